import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as bytes (4 or 16).
struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    var bytes: [UInt8]

    var isV4: Bool { bytes.count == 4 }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    var mappedV4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    var description: String {
        if isV4 { return bytes.map(String.init).joined(separator: ".") }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(cString: buffer)
    }

    /// As it goes into a URL's host: IPv6 in brackets.
    var urlHost: String { isV4 ? description : "[\(description)]" }

    /// A strict IPv6 literal (no zone), or nil.
    static func parseV6(_ text: String) -> IPAddress? {
        guard text.contains(":"), !text.contains("%") else { return nil }
        var storage = in6_addr()
        guard inet_pton(AF_INET6, text, &storage) == 1 else { return nil }
        return IPAddress(bytes: withUnsafeBytes(of: storage) { Array($0) })
    }

    /// An IPv4 address in any form `inet_aton` (and so many HTTP stacks) accepts: one to four parts, each decimal,
    /// octal (leading `0`) or hexadecimal (`0x`), the last part filling the remaining bytes — `2130706433`, `0x7f.1`,
    /// `0177.0.0.1` and `127.1` are all 127.0.0.1. Nil when it is not such a form (or a part overflows).
    static func parseV4(_ text: String) -> IPAddress? {
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
        return IPAddress(bytes: [UInt8(number >> 24 & 0xff), UInt8(number >> 16 & 0xff), UInt8(number >> 8 & 0xff), UInt8(number & 0xff)])
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
    func isIn(_ range: IPRange) -> Bool {
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
struct IPRange: Sendable, Hashable, CustomStringConvertible {
    var address: IPAddress
    var prefixLength: Int

    init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Strict CIDR text (dotted-quad IPv4 or IPv6, optional `/n`); nil otherwise.
    init?(_ text: String) {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(pieces.count) else { return nil }
        let host = String(pieces[0])
        let parsed: IPAddress?
        if host.contains(":") {
            parsed = IPAddress.parseV6(host)
        } else {
            // Only the plain dotted quad here: an admin setting should not need the tricks.
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            parsed = octets.count == 4 && octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0)! <= 255 })
                ? IPAddress(bytes: octets.map { UInt8($0)! }) : nil
        }
        guard let address = parsed else { return nil }
        let maximum = address.bytes.count * 8
        if pieces.count == 2 {
            guard let length = Int(pieces[1]), (0...maximum).contains(length), pieces[1].allSatisfy(\.isNumber) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        self.address = address
    }

    var description: String { "\(address)/\(prefixLength)" }
}

/// Why a webhook URL may not be called.
struct WebhookAddressRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// The SSRF guard of webhook deliveries: which addresses a receiver may have, checked when the URL is registered and
/// again at every delivery, on the addresses the host resolves to **then** (DNS answers change).
///
/// Refused unless an admin allowed a range that holds them: the unspecified, loopback, private (RFC 1918, unique local),
/// shared (100.64.0.0/10), link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10), multicast, reserved,
/// documentation and benchmarking ranges, and IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible,
/// NAT64, 6to4, Teredo) unless the IPv4 address itself is fine. A host that looks like a number (`2130706433`, `0x7f.1`)
/// is read the way `inet_aton` reads it, so it is checked as the address it means. Every answer of the resolver must be
/// acceptable, not only the first.
struct WebhookAddressGuard: Sendable {
    /// Ranges the admin allows despite the rules (`webhook_settings.allowed_ranges`).
    var allowed: [IPRange]

    init(allowed: [IPRange] = []) {
        self.allowed = allowed
    }

    private static let forbiddenV4: [IPRange] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
    ].map { IPRange($0)! }

    private static let globalV6 = IPRange("2000::/3")!
    private static let forbiddenGlobalV6: [IPRange] = ["2001::/32", "2001:db8::/32", "2001:10::/28", "2001:20::/28"].map { IPRange($0)! }
    private static let sixToFour = IPRange("2002::/16")!

    /// Nil when `address` may be called, otherwise why not.
    func refusal(for address: IPAddress) -> String? {
        if allowed.contains(where: { address.isIn($0) }) { return nil }
        if address.isV4 {
            return Self.forbiddenV4.contains(where: { address.isIn($0) }) ? "\(address) is not a public address" : nil
        }
        if let mapped = address.mappedV4 {
            return refusal(for: mapped).map { _ in "\(address) maps to \(mapped), which is not a public address" }
        }
        if address.isIn(Self.sixToFour) {
            return refusal(for: IPAddress(bytes: Array(address.bytes[2..<6]))).map { _ in "\(address) is a 6to4 address of a non-public IPv4 address" }
        }
        guard address.isIn(Self.globalV6), !Self.forbiddenGlobalV6.contains(where: { address.isIn($0) }) else {
            return "\(address) is not a public address"
        }
        return nil
    }

    /// A URL's parts as the guard sees them.
    struct Target: Sendable, Equatable {
        var scheme: String
        /// The host as written (without brackets, lowercased, without one trailing dot).
        var host: String
        var port: Int
        /// Path and query, at least `/`.
        var pathAndQuery: String
        /// When the host is an address literal (in any form), that address.
        var literal: IPAddress?
    }

    /// Checks the URL's form: http or https, a host, no user info, no fragment. Does not resolve.
    static func target(of urlString: String) throws(WebhookAddressRefusal) -> Target {
        guard let components = URLComponents(string: urlString), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https"
        else { throw WebhookAddressRefusal(reason: "must be an absolute http or https URL") }
        guard components.user == nil, components.password == nil else { throw WebhookAddressRefusal(reason: "must not carry user information") }
        guard components.fragment == nil else { throw WebhookAddressRefusal(reason: "must not have a fragment") }
        guard var host = components.percentEncodedHost?.lowercased(), !host.isEmpty else { throw WebhookAddressRefusal(reason: "must have a host") }
        guard !host.contains("%") else { throw WebhookAddressRefusal(reason: "must not have percent-encoding or an IPv6 zone in the host") }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65_535).contains(port) else { throw WebhookAddressRefusal(reason: "has an invalid port") }
        var literal: IPAddress?
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), let address = IPAddress.parseV6(String(host.dropFirst().dropLast())) else {
                throw WebhookAddressRefusal(reason: "has an invalid IPv6 address")
            }
            host = String(host.dropFirst().dropLast())
            literal = address
        } else {
            if host.hasSuffix(".") { host.removeLast() }
            if let address = IPAddress.parseV4(host) {
                literal = address
            } else if let last = host.split(separator: ".").last, last.allSatisfy({ $0.isNumber }) || last.hasPrefix("0x") {
                // Browsers read a host ending in a number as an IPv4 address; one that is not a valid address is refused
                // rather than guessed at.
                throw WebhookAddressRefusal(reason: "has a numeric host that is not a valid IPv4 address")
            }
        }
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?\(query)" }
        return Target(scheme: scheme, host: host, port: port, pathAndQuery: path, literal: literal)
    }

    /// Resolves `target` now and checks every answer: the addresses to connect to (the first is used), or the refusal.
    func check(_ target: Target) async throws(WebhookAddressRefusal) -> [IPAddress] {
        let addresses: [IPAddress]
        if let literal = target.literal {
            addresses = [literal]
        } else {
            do {
                addresses = try await Self.resolve(target.host)
            } catch {
                throw WebhookAddressRefusal(reason: "\(target.host) does not resolve: \(error)")
            }
            guard !addresses.isEmpty else { throw WebhookAddressRefusal(reason: "\(target.host) has no address") }
        }
        for address in addresses {
            if let reason = refusal(for: address) {
                throw WebhookAddressRefusal(reason: target.literal == nil ? "\(target.host) resolves to \(address): \(reason)" : reason)
            }
        }
        return addresses
    }

    /// Checks a URL's form and its addresses now.
    func check(url: String) async throws(WebhookAddressRefusal) -> (Target, [IPAddress]) {
        let target = try Self.target(of: url)
        return (target, try await check(target))
    }

    struct ResolutionError: Error, CustomStringConvertible {
        var code: Int32
        var description: String { String(cString: gai_strerror(code)) }
    }

    /// Every address of `host` (getaddrinfo, on NIO's blocking thread pool), without duplicates.
    static func resolve(_ host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &result)
            guard status == 0 else { throw ResolutionError(code: status) }
            defer { freeaddrinfo(result) }
            var addresses: [IPAddress] = []
            var next = result
            while let info = next {
                if let sockaddr = info.pointee.ai_addr {
                    switch Int32(info.pointee.ai_family) {
                    case AF_INET:
                        let address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                        addresses.append(IPAddress(bytes: withUnsafeBytes(of: address) { Array($0) }))
                    case AF_INET6:
                        let address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                        addresses.append(IPAddress(bytes: withUnsafeBytes(of: address) { Array($0) }))
                    default:
                        break
                    }
                }
                next = info.pointee.ai_next
            }
            var seen = Set<IPAddress>()
            return addresses.filter { seen.insert($0).inserted }
        }
    }
}
