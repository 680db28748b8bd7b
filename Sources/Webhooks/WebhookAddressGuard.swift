import Foundation
import NIOPosix
import ResellerCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a webhook URL may not be called.
package struct WebhookAddressRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    package var reason: String
    package var description: String { reason }
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
package struct WebhookAddressGuard: Sendable {
    /// Ranges the admin allows despite the rules (`webhook_settings.allowed_ranges`).
    package var allowed: [IPRange]

    package init(allowed: [IPRange] = []) {
        self.allowed = allowed
    }

    private static let forbiddenV4: [IPRange] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
    ].map { IPRange($0)! }

    private static let globalV6 = IPRange("2000::/3")!
    private static let forbiddenGlobalV6: [IPRange] = ["2001::/32", "2001:db8::/32", "2001:10::/28", "2001:20::/28"].map
    { IPRange($0)! }
    private static let sixToFour = IPRange("2002::/16")!

    /// Nil when `address` may be called, otherwise why not.
    package func refusal(for address: IPAddress) -> String? {
        if allowed.contains(where: { address.isIn($0) }) { return nil }
        if address.isV4 {
            return Self.forbiddenV4.contains(where: { address.isIn($0) }) ? "\(address) is not a public address" : nil
        }
        if let mapped = address.mappedV4 {
            return refusal(for: mapped).map { _ in "\(address) maps to \(mapped), which is not a public address" }
        }
        if address.isIn(Self.sixToFour) {
            return refusal(for: IPAddress(bytes: Array(address.bytes[2..<6]))).map { _ in
                "\(address) is a 6to4 address of a non-public IPv4 address"
            }
        }
        guard address.isIn(Self.globalV6), !Self.forbiddenGlobalV6.contains(where: { address.isIn($0) }) else {
            return "\(address) is not a public address"
        }
        return nil
    }

    /// A URL's parts as the guard sees them.
    package struct Target: Sendable, Equatable {
        package var scheme: String
        /// The host as written (without brackets, lowercased, without one trailing dot).
        package var host: String
        package var port: Int
        /// Path and query, at least `/`.
        package var pathAndQuery: String
        /// When the host is an address literal (in any form), that address.
        package var literal: IPAddress?
    }

    /// Checks the URL's form: http or https, a host, no user info, no fragment. Does not resolve.
    package static func target(of urlString: String) throws(WebhookAddressRefusal) -> Target {
        guard let components = URLComponents(string: urlString), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https"
        else { throw WebhookAddressRefusal(reason: "must be an absolute http or https URL") }
        guard components.user == nil, components.password == nil else {
            throw WebhookAddressRefusal(reason: "must not carry user information")
        }
        guard components.fragment == nil else { throw WebhookAddressRefusal(reason: "must not have a fragment") }
        guard var host = components.percentEncodedHost?.lowercased(), !host.isEmpty else {
            throw WebhookAddressRefusal(reason: "must have a host")
        }
        guard !host.contains("%") else {
            throw WebhookAddressRefusal(reason: "must not have percent-encoding or an IPv6 zone in the host")
        }
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
            } else if let last = host.split(separator: ".").last,
                last.allSatisfy({ $0.isNumber }) || last.hasPrefix("0x")
            {
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
    package func check(_ target: Target) async throws(WebhookAddressRefusal) -> [IPAddress] {
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
                throw WebhookAddressRefusal(
                    reason: target.literal == nil ? "\(target.host) resolves to \(address): \(reason)" : reason)
            }
        }
        return addresses
    }

    /// Checks a URL's form and its addresses now.
    package func check(url: String) async throws(WebhookAddressRefusal) -> (Target, [IPAddress]) {
        let target = try Self.target(of: url)
        return (target, try await check(target))
    }

    package struct ResolutionError: Error, CustomStringConvertible {
        package var code: Int32
        package var description: String { String(cString: gai_strerror(code)) }
    }

    /// Every address of `host` (getaddrinfo, on NIO's blocking thread pool), without duplicates.
    package static func resolve(_ host: String) async throws -> [IPAddress] {
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
                        let address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                            $0.pointee.sin_addr
                        }
                        addresses.append(IPAddress(bytes: withUnsafeBytes(of: address) { Array($0) }))
                    case AF_INET6:
                        let address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                            $0.pointee.sin6_addr
                        }
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
