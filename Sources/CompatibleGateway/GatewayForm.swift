import Foundation
import Gateway1601
import HTTPTypes
import Hummingbird
import NIOCore

/// The parameters of one 1601-style request: the query's, then the form body's (so the query wins for a name given
/// in both), each percent-decoded exactly once and kept only when it is valid UTF-8 (``FormEncoding/decodeStrictly(_:)``).
package struct GatewayForm: Sendable {
    package enum Value: Sendable, Equatable {
        case absent
        /// Present, but not valid percent-encoded UTF-8: refused by the check the parameter belongs to, never used.
        case malformed
        case text(String)
    }

    private var pairs: [FormEncoding.StrictPair]

    package init(query: String?, body: [UInt8]?) {
        pairs =
            FormEncoding.decodeStrictly(Array((query ?? "").utf8))
            + (body.map { FormEncoding.decodeStrictly($0) } ?? [])
    }

    /// The first parameter called `name`. Names are compared exactly, as the upstream's PHP does.
    package subscript(name: String) -> Value {
        guard let pair = pairs.first(where: { $0.name == name }) else { return .absent }
        return pair.value.map(Value.text) ?? .malformed
    }

    /// The value, when present and readable.
    package func text(_ name: String) -> String? {
        if case .text(let value) = self[name] { return value }
        return nil
    }

    /// Whether the text is empty or absent: the upstream's "is empty" (100, 101, 102, 103).
    package func isEmpty(_ name: String) -> Bool {
        switch self[name] {
        case .absent: true
        case .malformed: false
        case .text(let value): value.isEmpty
        }
    }

    /// A `ja` flag (`yes` too, as the document once writes it), case-insensitively.
    package func isYes(_ name: String) -> Bool {
        guard let value = text(name)?.lowercased() else { return false }
        return value == "ja" || value == "yes"
    }

    /// Reads a request: the query, and for a POST its body, `application/x-www-form-urlencoded` (also when no type is
    /// given) or `multipart/form-data` (what PHP's curl sends for an array of fields), up to `maximumBodyBytes`.
    package static func read(_ request: Request, maximumBodyBytes: Int) async throws(GatewayReply) -> GatewayForm {
        var form = GatewayForm(query: request.uri.query, body: nil)
        guard request.method == .post else { return form }
        var boundary: String?
        if let type = request.headers[.contentType]?.lowercased() {
            if type.hasPrefix("multipart/form-data") {
                boundary = Self.boundary(of: request.headers[.contentType]!)
                if boundary == nil {
                    throw GatewayReply("a multipart/form-data body needs a boundary", status: .badRequest)
                }
            } else if !type.hasPrefix("application/x-www-form-urlencoded") {
                throw GatewayReply(
                    "send the parameters in the query, or as an application/x-www-form-urlencoded or multipart/form-data body",
                    status: .unsupportedMediaType)
            }
        }
        // A declared length past the limit is refused before a byte of the body is read; a chunked body is refused as
        // soon as it grows past it (`collect(upTo:)`).
        if let declared = request.headers[.contentLength], let length = Int(declared), length > maximumBodyBytes {
            throw GatewayReply("the body is larger than \(maximumBodyBytes) bytes", status: .contentTooLarge)
        }
        let body: [UInt8]
        do {
            var buffer = try await request.body.collect(upTo: maximumBodyBytes)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw GatewayReply("the body is larger than \(maximumBodyBytes) bytes", status: .contentTooLarge)
        } catch {
            throw GatewayReply("the body could not be read", status: .badRequest)
        }
        if let boundary {
            guard let parts = Self.multipartPairs(body, boundary: boundary) else {
                throw GatewayReply("the multipart/form-data body is malformed", status: .badRequest)
            }
            form.pairs += parts
        } else {
            form.pairs += FormEncoding.decodeStrictly(body)
        }
        return form
    }

    /// The `boundary` parameter of a multipart content type (quoted or not).
    package static func boundary(of contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value =
                pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2
                ? String(pair[1].dropFirst().dropLast()) : pair[1]
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    /// The fields of a `multipart/form-data` body (RFC 7578): each part's `name` with its bytes as the value, read as
    /// strictly as a form's (no percent-decoding: multipart values are sent as they are). Nil when it is not such a body.
    package static func multipartPairs(_ body: [UInt8], boundary: String) -> [FormEncoding.StrictPair]? {
        let delimiter = Array("--\(boundary)".utf8)
        let crlf: [UInt8] = [13, 10]
        var positions: [Int] = []
        var index = 0
        while let found = Self.find(delimiter, in: body, from: index) {
            positions.append(found)
            index = found + delimiter.count
        }
        guard positions.count >= 2 else { return nil }
        var pairs: [FormEncoding.StrictPair] = []
        for (start, end) in zip(positions, positions.dropFirst()) {
            // A part runs from after the delimiter's line break to before the CRLF that precedes the next delimiter.
            var partStart = start + delimiter.count
            guard body[partStart..<min(partStart + 2, body.count)].elementsEqual(crlf) else { return nil }
            partStart += 2
            let partEnd = end - 2
            guard partEnd >= partStart, body[partEnd..<end].elementsEqual(crlf) else { return nil }
            let part = Array(body[partStart..<partEnd])
            guard let headerEnd = Self.find(crlf + crlf, in: part, from: 0) else { return nil }
            guard let headers = String(validating: part[..<headerEnd], as: UTF8.self) else { return nil }
            let disposition = headers.split(separator: "\r\n").first {
                $0.lowercased().hasPrefix("content-disposition:")
            }
            guard let name = disposition.flatMap(Self.fieldName) else { return nil }
            pairs.append(FormEncoding.StrictPair(name: name, value: FormEncoding.strictText(part[(headerEnd + 4)...])))
        }
        // The last delimiter closes the body.
        guard body[(positions.last! + delimiter.count)...].starts(with: Array("--".utf8)) else { return nil }
        return pairs
    }

    /// The `name` parameter of a `Content-Disposition: form-data` header line (not `filename`).
    private static func fieldName(_ header: Substring) -> String? {
        header.split(separator: ";").dropFirst().lazy
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.lowercased().hasPrefix("name=") }
            .map { parameter in
                let value = parameter.dropFirst(5)
                return value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"")
                    ? String(value.dropFirst().dropLast()) : String(value)
            }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else {
            return nil
        }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }
}
