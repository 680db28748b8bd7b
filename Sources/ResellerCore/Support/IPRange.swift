import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as bytes (4 or 16).
package struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    package var bytes: [UInt8]

    package init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    package var isV4: Bool { bytes.count == 4 }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    package var mappedV4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else {
            return nil
        }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    package var description: String {
        if isV4 { return bytes.map(String.init).joined(separator: ".") }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// As it goes into a URL's host: IPv6 in brackets.
    package var urlHost: String { isV4 ? description : "[\(description)]" }

    /// A strict IPv6 literal (no zone), or nil.
    package static func parseV6(_ text: String) -> IPAddress? {
        guard text.contains(":"), !text.contains("%") else { return nil }
        var storage = in6_addr()
        guard inet_pton(AF_INET6, text, &storage) == 1 else { return nil }
        return IPAddress(bytes: withUnsafeBytes(of: storage) { Array($0) })
    }

    /// An IPv4 address in any form `inet_aton` (and so many HTTP stacks) accepts: one to four parts, each decimal,
    /// octal (leading `0`) or hexadecimal (`0x`), the last part filling the remaining bytes — `2130706433`, `0x7f.1`,
    /// `0177.0.0.1` and `127.1` are all 127.0.0.1. Nil when it is not such a form (or a part overflows).
    package static func parseV4(_ text: String) -> IPAddress? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            guard let value = parseV4Part(part) else { return nil }
            values.append(value)
        }
        // Every part but the last is one byte; the last fills what remains.
        let lastBits = 8 * (4 - (values.count - 1))
        for value in values.dropLast() where value > 0xff { return nil }
        guard values.last! < (UInt64(1) << lastBits) else { return nil }
        var number: UInt64 = 0
        for (index, value) in values.dropLast().enumerated() { number |= value << UInt64(24 - 8 * index) }
        number |= values.last!
        return IPAddress(bytes: [
            UInt8(number >> 24 & 0xff), UInt8(number >> 16 & 0xff), UInt8(number >> 8 & 0xff), UInt8(number & 0xff),
        ])
    }

    private static func parseV4Part(_ part: Substring) -> UInt64? {
        guard !part.isEmpty, part.count <= 12 else { return nil }
        let lower = part.lowercased()
        if lower.hasPrefix("0x") {
            let digits = lower.dropFirst(2)
            return digits.isEmpty ? 0 : UInt64(digits, radix: 16)
        }
        if lower.count > 1, lower.hasPrefix("0") { return UInt64(lower.dropFirst(), radix: 8) }
        return lower.allSatisfy(\.isASCII) ? UInt64(lower, radix: 10) : nil
    }

    /// Whether this address is in `range`.
    package func isIn(_ range: IPRange) -> Bool {
        if range.address.bytes.count != bytes.count {
            // An IPv4-mapped address is matched against IPv4 ranges too.
            if let mapped = mappedV4, range.address.isV4 { return mapped.isIn(range) }
            return false
        }
        var remaining = range.prefixLength
        for (mine, theirs) in zip(bytes, range.address.bytes) {
            guard remaining > 0 else { return true }
            let bits = min(remaining, 8)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if mine & mask != theirs & mask { return false }
            remaining -= bits
        }
        return true
    }
}

/// A CIDR range such as `127.0.0.0/8` or `::1/128`.
package struct IPRange: Sendable, Hashable, CustomStringConvertible {
    package var address: IPAddress
    package var prefixLength: Int

    package init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Strict CIDR text (dotted-quad IPv4 or IPv6, optional `/n`); nil otherwise.
    package init?(_ text: String) {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(pieces.count) else { return nil }
        let host = String(pieces[0])
        let parsed: IPAddress?
        if host.contains(":") {
            parsed = IPAddress.parseV6(host)
        } else {
            // Only the plain dotted quad here: an admin setting should not need the tricks.
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            parsed =
                octets.count == 4
                    && octets.allSatisfy({
                        !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0)! <= 255
                    })
                ? IPAddress(bytes: octets.map { UInt8($0)! }) : nil
        }
        guard let address = parsed else { return nil }
        let maximum = address.bytes.count * 8
        if pieces.count == 2 {
            guard let length = Int(pieces[1]), (0...maximum).contains(length), pieces[1].allSatisfy(\.isNumber) else {
                return nil
            }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        self.address = address
    }

    package var description: String { "\(address)/\(prefixLength)" }
}
