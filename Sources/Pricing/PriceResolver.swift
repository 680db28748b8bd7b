import Foundation
import PostgresLibpq
import SMSCore

/// One layer's price for a number, with where it came from (a message stores these ids, so later price changes
/// never alter an accepted price).
package struct LayerPrice: Sendable, Hashable, Codable {
    package var priceListID: UUID
    package var versionID: UUID
    /// The entry that priced the number: the longest prefix of it in the version.
    package var prefix: String
    package var pricePerPart: Money
}

/// The three prices of a number that may be sent.
package struct NumberPrice: Sendable, Hashable {
    package var number: PhoneNumber
    package var country: CallingCode
    package var retail: LayerPrice
    package var wholesale: LayerPrice
    package var upstreamCost: LayerPrice
}

/// Why a number may not be sent.
package struct PricingRefusal: Sendable, Hashable {
    package var number: PhoneNumber
    /// Nil exactly when the code is 112.
    package var country: CallingCode?
    /// 112: no calling code matches. 114: `forbidden` in some layer (policy wins over everything else).
    /// 107: some layer has no list, no version in force, no matching entry, or a `not_sellable` one.
    package var code: GatewayErrorCode
    /// The first layer (retail, wholesale, upstream cost) that refused it; nil for 112. For operators and logs:
    /// a sub-account is told the code only.
    package var layer: PriceLayer?
}

/// The outcome for one number.
package enum NumberPricing: Sendable, Hashable {
    case priced(NumberPrice)
    case refused(PricingRefusal)

    package var gatewayCode: GatewayErrorCode? {
        if case .refused(let refusal) = self { return refusal.code }
        return nil
    }

    package var country: CallingCode? {
        switch self {
        case .priced(let price): price.country
        case .refused(let refusal): refusal.country
        }
    }
}

/// A layer's list and its version in force at the instant (nil when none is).
package struct AppliedVersion: Sendable, Hashable {
    package var priceListID: UUID
    package var versionID: UUID?
}

/// The prices of a set of numbers for one sub-account at one instant.
package struct PriceResolution: Sendable {
    package var subAccountID: UUID
    package var resellerID: UUID
    /// The instant whose versions were used.
    package var instant: Date
    /// Nil when no list of the layer applies to the sub-account.
    package var retail: AppliedVersion?
    package var wholesale: AppliedVersion?
    package var upstreamCost: AppliedVersion?
    /// Every distinct number asked about.
    package var numbers: [PhoneNumber: NumberPricing]

    package subscript(number: PhoneNumber) -> NumberPricing? { numbers[number] }
}

/// The price-list versions in force for a sub-account at an instant: what `PriceResolver` reads first.
package struct PriceVersions: Sendable {
    package var subAccountID: UUID
    package var resellerID: UUID
    package var instant: Date
    package var retail: AppliedVersion?
    package var wholesale: AppliedVersion?
    package var upstreamCost: AppliedVersion?
}

/// Prices numbers for a sub-account: the one place the three layers are resolved, for the preview and the send path.
///
/// For each layer it takes the list that applies to the sub-account (retail: its own, else its reseller's default;
/// wholesale: the reseller's own, else the platform default; upstream cost: the platform's), the version of that
/// list in force at the instant (latest `effective_from <= instant`), and in it the entry with the longest prefix of
/// the number. Two statements whatever the number of numbers: one for the versions, one for every number's three
/// entries (`unnest` of the distinct numbers, index lookups of each number's prefixes).
///
/// See docs/tariffs.md.
package struct PriceResolver: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Nil when there is no such sub-account.
    package func resolve(subAccountID: UUID, numbers: some Sequence<PhoneNumber>, at instant: Date) async throws
        -> PriceResolution?
    {
        try await pool.withConnection {
            try await Self.resolve(on: $0, subAccountID: subAccountID, numbers: numbers, at: instant)
        }
    }

    /// The same on a connection of the caller's.
    package static func resolve(
        on connection: PostgresConnection, subAccountID: UUID, numbers: some Sequence<PhoneNumber>, at instant: Date
    ) async throws -> PriceResolution? {
        guard let versions = try await connection.read(versionsRead(subAccountID: subAccountID, at: instant)) else {
            return nil
        }
        return try await resolve(on: connection, versions: versions, numbers: numbers)
    }

    /// The first of the two statements, as a read that can share a round trip with others: the list of each layer that
    /// applies to the sub-account and its version in force at `instant`. Nil when there is no such sub-account.
    package static func versionsRead(subAccountID: UUID, at instant: Date) -> PostgresRead<PriceVersions?> {
        PostgresRead(
            """
            SELECT s.reseller_id,
                   rl.list, retail_price_version_at(s.reseller_id, rl.list, \(instant)::timestamptz),
                   wl.list, platform_price_version_at(wl.list, \(instant)::timestamptz),
                   ul.list, platform_price_version_at(ul.list, \(instant)::timestamptz)
            FROM sub_account s
            CROSS JOIN LATERAL (SELECT effective_retail_price_list(s.reseller_id, s.id) AS list) rl
            CROSS JOIN LATERAL (SELECT effective_wholesale_price_list(s.reseller_id) AS list) wl
            CROSS JOIN LATERAL (SELECT effective_upstream_cost_price_list() AS list) ul
            WHERE s.id = \(subAccountID)
            """
        ) { rows in
            guard let row = try rows.first(as: (UUID, UUID?, UUID?, UUID?, UUID?, UUID?, UUID?).self) else {
                return nil
            }
            return PriceVersions(
                subAccountID: subAccountID, resellerID: row.0, instant: instant,
                retail: row.1.map { AppliedVersion(priceListID: $0, versionID: row.2) },
                wholesale: row.3.map { AppliedVersion(priceListID: $0, versionID: row.4) },
                upstreamCost: row.5.map { AppliedVersion(priceListID: $0, versionID: row.6) })
        }
    }

    /// The second statement: every number's entry in each layer's version.
    package static func resolve(
        on connection: PostgresConnection, versions: PriceVersions, numbers: some Sequence<PhoneNumber>
    ) async throws -> PriceResolution {
        let (subAccountID, resellerID, instant) = (versions.subAccountID, versions.resellerID, versions.instant)
        let (retail, wholesale, upstreamCost) = (versions.retail, versions.wholesale, versions.upstreamCost)

        var results: [PhoneNumber: NumberPricing] = [:]
        var countries: [String: CallingCode] = [:]
        for number in numbers where results[number] == nil && countries[number.digits] == nil {
            if let country = number.callingCode {
                countries[number.digits] = country
            } else {
                results[number] = .refused(
                    PricingRefusal(number: number, country: nil, code: .invalidCountryCode, layer: nil))
            }
        }
        guard !countries.isEmpty else {
            return PriceResolution(
                subAccountID: subAccountID, resellerID: resellerID, instant: instant, retail: retail,
                wholesale: wholesale,
                upstreamCost: upstreamCost, numbers: results)
        }
        let digits = Array(countries.keys)
        let rows = try await connection.query(
            """
            SELECT n.digits, r.prefix, r.price, r.status, w.prefix, w.price, w.status, u.prefix, u.price, u.status
            FROM unnest(\(digits)::text[]) AS n (digits)
            LEFT JOIN LATERAL retail_price_match(\(resellerID), \(retail?.versionID)::uuid, n.digits) r ON true
            LEFT JOIN LATERAL platform_price_match(\(wholesale?.versionID)::uuid, n.digits) w ON true
            LEFT JOIN LATERAL platform_price_match(\(upstreamCost?.versionID)::uuid, n.digits) u ON true
            """
        ).decode((String, String?, Int64?, String?, String?, Int64?, String?, String?, Int64?, String?).self)
        for row in rows {
            // Every number was parsed already; its digits are its identity.
            let number = try PhoneNumber(parsing: row.0)
            let country = countries[row.0]!
            let layers: [(PriceLayer, AppliedVersion?, String?, Int64?, String?)] = [
                (.retail, retail, row.1, row.2, row.3), (.wholesale, wholesale, row.4, row.5, row.6),
                (.upstreamCost, upstreamCost, row.7, row.8, row.9),
            ]
            var prices: [LayerPrice] = []
            var refusal: PricingRefusal?
            for (layer, applied, prefix, price, status) in layers {
                let code: GatewayErrorCode? =
                    if let status, let parsed = PriceStatus(rawValue: status) { parsed.gatewayCode } else {
                        .countryNotOffered
                    }
                if let code {
                    // 114 (policy) wins over 107; otherwise the first layer that refuses is named.
                    if refusal == nil || (code == .countryNotPermitted && refusal?.code != .countryNotPermitted) {
                        refusal = PricingRefusal(number: number, country: country, code: code, layer: layer)
                    }
                } else if let applied, let versionID = applied.versionID, let prefix, let price {
                    prices.append(
                        LayerPrice(
                            priceListID: applied.priceListID, versionID: versionID, prefix: prefix,
                            pricePerPart: Money(minorUnits: price)))
                }
            }
            if let refusal {
                results[number] = .refused(refusal)
            } else {
                results[number] = .priced(
                    NumberPrice(
                        number: number, country: country, retail: prices[0], wholesale: prices[1],
                        upstreamCost: prices[2]))
            }
        }
        return PriceResolution(
            subAccountID: subAccountID, resellerID: resellerID, instant: instant, retail: retail, wholesale: wholesale,
            upstreamCost: upstreamCost, numbers: results)
    }
}
