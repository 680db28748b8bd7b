import CZlib

/// Turns PostgreSQL's COPY output into the bytes a client receives, chunk by chunk, in constant memory: CSV record
/// ends become CRLF (RFC 4180; line breaks inside quoted fields are kept as they are), records are counted, and the
/// whole is gzip-compressed when asked.
package struct ExportEncoder {
    package enum Framing: Sendable {
        /// COPY's CSV: LF after each record, quoted fields may hold line breaks.
        case csv
        /// One JSON document per line (JSON escapes every line break inside a document).
        case jsonLines
    }

    private let framing: Framing
    private var insideQuotes = false
    private var gzip: GzipEncoder?
    /// Records seen so far (CSV: the header row included).
    package private(set) var records = 0
    /// Bytes handed out so far (compressed when gzip is on).
    package private(set) var bytes = 0

    package init(framing: Framing, gzip: Bool) throws {
        self.framing = framing
        self.gzip = gzip ? try GzipEncoder() : nil
    }

    /// The bytes to send for `chunk` of COPY output (possibly none, while gzip buffers).
    package mutating func encode(_ chunk: [UInt8]) throws -> [UInt8] {
        var out: [UInt8]
        switch framing {
        case .jsonLines:
            records += chunk.count(where: { $0 == UInt8(ascii: "\n") })
            out = chunk
        case .csv:
            out = []
            out.reserveCapacity(chunk.count + chunk.count / 32)
            for byte in chunk {
                if byte == UInt8(ascii: "\"") {
                    insideQuotes.toggle()
                } else if byte == UInt8(ascii: "\n") && !insideQuotes {
                    out.append(UInt8(ascii: "\r"))
                    records += 1
                }
                out.append(byte)
            }
        }
        if let gzip { out = try gzip.compress(out) }
        bytes += out.count
        return out
    }

    /// The last bytes (the gzip trailer), once the COPY is over.
    package mutating func finish() throws -> [UInt8] {
        guard let gzip else { return [] }
        let out = try gzip.finish()
        bytes += out.count
        return out
    }
}

/// A streaming gzip (RFC 1952) compressor over zlib's deflate.
package final class GzipEncoder {
    package struct Failure: Error, CustomStringConvertible {
        package var code: Int32
        package var description: String { "zlib deflate failed with code \(code)" }
    }

    private let stream: UnsafeMutablePointer<z_stream>
    private var finished = false

    package init(level: Int32 = 6) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 + 16: a 32 KiB window with a gzip header and trailer; memLevel 8 is zlib's default.
        let status = deflateInit2_(
            stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
            Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw Failure(code: status)
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `input`; returns what deflate has ready (often nothing for small inputs).
    package func compress(_ input: [UInt8]) throws -> [UInt8] {
        try run(input, flush: Z_NO_FLUSH)
    }

    /// Ends the stream: the remaining compressed bytes and the trailer (CRC-32, length).
    package func finish() throws -> [UInt8] {
        guard !finished else { return [] }
        finished = true
        return try run([], flush: Z_FINISH)
    }

    private func run(_ input: [UInt8], flush: Int32) throws -> [UInt8] {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        try input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.pointee.next_in = inputBuffer.baseAddress
            stream.pointee.avail_in = UInt32(inputBuffer.count)
            repeat {
                let status = buffer.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.pointee.next_out = out.baseAddress
                    stream.pointee.avail_out = UInt32(out.count)
                    return deflate(stream, flush)
                }
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    throw Failure(code: status)
                }
                output.append(contentsOf: buffer[0..<(buffer.count - Int(stream.pointee.avail_out))])
                if status == Z_STREAM_END { break }
            } while stream.pointee.avail_out == 0 || (flush == Z_FINISH)
            stream.pointee.next_in = nil
        }
        return output
    }
}
