import Foundation
import PostgresLibpq
import ResellerCore
import SMSCore

/// A price list of any layer, with its version in force now.
package struct PriceListRecord: Codable, Sendable {
    package var id: UUID
    package var layer: PriceLayer
    /// The owner of a retail list; nil for platform lists.
    package var resellerID: UUID?
    package var name: String
    package var description: String?
    package var allowLoss: Bool
    package var createdBy: String
    package var createdAt: Date
    package var updatedAt: Date
    package var versionCount: Int
    package var currentVersionID: UUID?
    package var currentEffectiveFrom: Date?
    package var nextEffectiveFrom: Date?

    package enum CodingKeys: String, CodingKey {
        case id, layer, name, description
        case resellerID = "reseller_id"
        case allowLoss = "allow_loss"
        case createdBy = "created_by"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case versionCount = "version_count"
        case currentVersionID = "current_version_id"
        case currentEffectiveFrom = "current_effective_from"
        case nextEffectiveFrom = "next_effective_from"
    }
}

package enum PriceVersionState: String, Codable, Sendable {
    /// Takes effect later.
    case scheduled
    /// The version in force now.
    case inForce = "in_force"
    /// A later version is in force.
    case superseded
}

/// A version of a price list (its entries are read separately).
package struct PriceVersionRecord: Codable, Sendable {
    package var id: UUID
    package var priceListID: UUID
    package var layer: PriceLayer
    package var resellerID: UUID?
    package var effectiveFrom: Date
    package var state: PriceVersionState
    package var entryCount: Int
    package var note: String?
    package var createdBy: String
    package var createdAt: Date

    package enum CodingKeys: String, CodingKey {
        case id, layer, state, note
        case priceListID = "price_list_id"
        case resellerID = "reseller_id"
        case effectiveFrom = "effective_from"
        case entryCount = "entry_count"
        case createdBy = "created_by"
        case createdAt = "created_at"
    }
}

/// One entry of a version.
package struct PriceEntryRecord: Codable, Sendable, Hashable {
    package var prefix: String
    package var priceMinorUnits: Int64?
    package var status: PriceStatus

    package var price: Money? { priceMinorUnits.map(Money.init(minorUnits:)) }

    package enum CodingKeys: String, CodingKey {
        case prefix, status
        case priceMinorUnits = "price"
    }
}

/// A retail price below the wholesale price in force for the reseller.
package struct PriceLoss: Sendable, Hashable {
    /// The retail entry.
    package var retailPrefix: String
    package var retailPrice: Money
    /// The wholesale entry it is below: the same prefix, a shorter one, or a longer range inside the retail one.
    package var wholesalePrefix: String
    /// The highest of the wholesale versions in force while the retail version is.
    package var wholesalePrice: Money
}

/// Which list of a layer applies to an account, and its version in force now.
package struct AppliedPriceListRecord: Codable, Sendable, Equatable {
    package enum Source: String, Codable, Sendable {
        /// Assigned to this account.
        case own
        /// The fallback: the platform's default wholesale list, the reseller's default retail list.
        case `default`
        /// No list applies.
        case none
    }
    package var source: Source
    package var priceListID: UUID?
    package var currentVersionID: UUID?
    package var currentEffectiveFrom: Date?
}

package struct ResellerPricingRecord: Sendable {
    package var resellerID: UUID
    package var wholesale: AppliedPriceListRecord
    package var defaultRetail: AppliedPriceListRecord
}

package struct SubAccountPricingRecord: Sendable {
    package var resellerID: UUID
    package var subAccountID: UUID
    package var retail: AppliedPriceListRecord
}

/// The platform's default list per platform layer.
package struct PriceDefaultsRecord: Codable, Sendable, Equatable {
    package var upstreamCostPriceListID: UUID?
    package var wholesalePriceListID: UUID?

    package enum CodingKeys: String, CodingKey {
        case upstreamCostPriceListID = "upstream_cost_price_list_id"
        case wholesalePriceListID = "wholesale_price_list_id"
    }
}

/// Price lists, their versions and entries, and which lists apply to whom.
///
/// Platform lists (upstream cost, wholesale) and retail lists live in tables of their own (see 0004_tariffs.sql);
/// this repository reads both through one visibility rule:
/// the admin sees every list; a reseller its own retail lists and the wholesale list that applies to it;
/// a sub-account the retail list that applies to it.
///
/// See docs/tariffs.md.
package struct PriceListRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    // MARK: - Lists

    /// Every list `scope` may read, with the version in force now; one row per list.
    package static func visibleLists(_ scope: TenantScope) -> PostgresQuery {
        """
        SELECT l.id, l.layer, NULL::uuid AS reseller_id, l.name, l.description, false AS allow_loss, l.created_by, l.created_at,
               l.updated_at, (SELECT count(*) FROM platform_price_version v WHERE v.price_list_id = l.id) AS version_count,
               cur.id AS current_version_id, cur.effective_from AS current_effective_from,
               (SELECT min(v.effective_from) FROM platform_price_version v
                WHERE v.price_list_id = l.id AND v.effective_from > now()) AS next_effective_from
        FROM platform_price_list l
        LEFT JOIN platform_price_version cur ON cur.id = platform_price_version_at(l.id, now())
        WHERE \(scope.resellerID)::uuid IS NULL
           OR (\(scope.subAccountID)::uuid IS NULL AND l.id = effective_wholesale_price_list(\(scope.resellerID)::uuid))
        UNION ALL
        SELECT l.id, 'retail', l.reseller_id, l.name, l.description, l.allow_loss, l.created_by, l.created_at,
               l.updated_at, (SELECT count(*) FROM retail_price_version v WHERE v.reseller_id = l.reseller_id AND v.price_list_id = l.id),
               cur.id, cur.effective_from,
               (SELECT min(v.effective_from) FROM retail_price_version v
                WHERE v.reseller_id = l.reseller_id AND v.price_list_id = l.id AND v.effective_from > now())
        FROM retail_price_list l
        LEFT JOIN retail_price_version cur ON cur.reseller_id = l.reseller_id AND cur.id = retail_price_version_at(l.reseller_id, l.id, now())
        WHERE \(scope.resellerID)::uuid IS NULL
           OR (l.reseller_id = \(scope.resellerID)::uuid
               AND (\(scope.subAccountID)::uuid IS NULL OR l.id = effective_retail_price_list(l.reseller_id, \(scope.subAccountID)::uuid)))
        """
    }

    package static func find(on connection: PostgresConnection, id: UUID, scope: TenantScope) async throws
        -> PriceListRecord?
    {
        try await connection.query("SELECT * FROM (\(visibleLists(scope))) lists WHERE id = \(id)")
            .decodeRecords(PriceListRecord.self).first
    }

    /// The list if `scope` may read it.
    package func find(id: UUID, scope: TenantScope) async throws -> PriceListRecord? {
        try await pool.withConnection { try await Self.find(on: $0, id: id, scope: scope) }
    }

    /// One page ordered by id.
    package func list(scope: TenantScope, layer: PriceLayer?, after cursor: UUID?, limit: Int) async throws
        -> [PriceListRecord]
    {
        try await pool.query(
            """
            SELECT * FROM (\(Self.visibleLists(scope))) lists
            WHERE (\(layer?.rawValue)::text IS NULL OR layer = \(layer?.rawValue)::text)
              AND (\(cursor)::uuid IS NULL OR id > \(cursor)::uuid)
            ORDER BY id
            LIMIT \(limit)
            """
        ).decodeRecords(PriceListRecord.self)
    }

    /// A platform list (`resellerID` nil) or a retail list of `resellerID`.
    package func create(
        layer: PriceLayer, resellerID: UUID?, name: String, description: String?, allowLoss: Bool, by actor: AuditActor
    ) async throws -> PriceListRecord {
        try await pool.withTransaction { connection in
            let id: UUID
            if layer.isPlatform {
                id = try await connection.query(
                    """
                    INSERT INTO platform_price_list (layer, name, description, created_by)
                    VALUES (\(layer.rawValue), \(name), \(description), \(actor.actor)) RETURNING id
                    """
                ).first(as: UUID.self)!
            } else {
                id = try await connection.query(
                    """
                    INSERT INTO retail_price_list (reseller_id, name, description, allow_loss, created_by)
                    VALUES (\(resellerID!), \(name), \(description), \(allowLoss), \(actor.actor)) RETURNING id
                    """
                ).first(as: UUID.self)!
            }
            let record = try await Self.find(on: connection, id: id, scope: .everything)!
            try await AuditRepository.record(
                on: connection, by: actor, action: "price_list.create", targetType: "price_list", targetID: id,
                resellerID: resellerID, before: nil, after: record)
            return record
        }
    }

    /// Sets the given fields (an empty `description` clears it); `allowLoss` only for retail lists.
    package func update(
        _ list: PriceListRecord, name: String?, description: String?, allowLoss: Bool?, by actor: AuditActor
    ) async throws -> PriceListRecord {
        try await pool.withTransaction { connection in
            if let resellerID = list.resellerID {
                try await connection.query(
                    "SELECT 1 FROM retail_price_list WHERE reseller_id = \(resellerID) AND id = \(list.id) FOR UPDATE")
            } else {
                try await connection.query("SELECT 1 FROM platform_price_list WHERE id = \(list.id) FOR UPDATE")
            }
            let before = try await Self.find(on: connection, id: list.id, scope: .everything)!
            if list.layer.isPlatform {
                try await connection.query(
                    """
                    UPDATE platform_price_list SET
                        name = coalesce(\(name)::text, name),
                        description = CASE WHEN \(description)::text IS NULL THEN description ELSE nullif(\(description)::text, '') END
                    WHERE id = \(list.id)
                    """)
            } else {
                try await connection.query(
                    """
                    UPDATE retail_price_list SET
                        name = coalesce(\(name)::text, name),
                        description = CASE WHEN \(description)::text IS NULL THEN description ELSE nullif(\(description)::text, '') END,
                        allow_loss = coalesce(\(allowLoss)::boolean, allow_loss)
                    WHERE reseller_id = \(list.resellerID!) AND id = \(list.id)
                    """)
            }
            let after = try await Self.find(on: connection, id: list.id, scope: .everything)!
            try await AuditRepository.record(
                on: connection, by: actor, action: "price_list.update", targetType: "price_list", targetID: list.id,
                resellerID: list.resellerID, before: before, after: after)
            return after
        }
    }

    // MARK: - Versions

    /// The versions of `list`, with their state now.
    private static func versions(of list: PriceListRecord) -> PostgresQuery {
        if let resellerID = list.resellerID {
            return """
                SELECT v.id, v.price_list_id, 'retail' AS layer, v.reseller_id, v.effective_from,
                       CASE WHEN v.effective_from > statement_timestamp() THEN 'scheduled'
                            WHEN v.id = retail_price_version_at(v.reseller_id, v.price_list_id, statement_timestamp()) THEN 'in_force'
                            ELSE 'superseded' END AS state,
                       v.entry_count, v.note, v.created_by, v.created_at
                FROM retail_price_version v
                WHERE v.reseller_id = \(resellerID) AND v.price_list_id = \(list.id)
                """
        }
        return """
            SELECT v.id, v.price_list_id, \(list.layer.rawValue)::text AS layer, NULL::uuid AS reseller_id, v.effective_from,
                   CASE WHEN v.effective_from > statement_timestamp() THEN 'scheduled'
                        WHEN v.id = platform_price_version_at(v.price_list_id, statement_timestamp()) THEN 'in_force'
                        ELSE 'superseded' END AS state,
                   v.entry_count, v.note, v.created_by, v.created_at
            FROM platform_price_version v
            WHERE v.price_list_id = \(list.id)
            """
    }

    /// One page, latest `effective_from` first; the cursor is the last version id of the previous page.
    package func versions(of list: PriceListRecord, after cursor: UUID?, limit: Int) async throws
        -> [PriceVersionRecord]
    {
        try await pool.query(
            """
            SELECT * FROM (\(Self.versions(of: list))) versions
            WHERE \(cursor)::uuid IS NULL
               OR (effective_from, id) < (SELECT effective_from, id FROM (\(Self.versions(of: list))) c WHERE c.id = \(cursor)::uuid)
            ORDER BY effective_from DESC, id DESC
            LIMIT \(limit)
            """
        ).decodeRecords(PriceVersionRecord.self)
    }

    package func version(id: UUID, of list: PriceListRecord) async throws -> PriceVersionRecord? {
        try await pool.withConnection { try await Self.version(on: $0, id: id, of: list) }
    }

    private static func version(on connection: PostgresConnection, id: UUID, of list: PriceListRecord) async throws
        -> PriceVersionRecord?
    {
        try await connection.query("SELECT * FROM (\(versions(of: list))) versions WHERE id = \(id)")
            .decodeRecords(PriceVersionRecord.self).first
    }

    /// Entries ordered by prefix, after `prefix` (keyset paging; versions never change, so pages are consistent).
    package func entries(
        of version: PriceVersionRecord, after prefix: String? = nil, limit: Int = PriceRules.maximumEntries
    ) async throws -> [PriceEntryRecord] {
        if let resellerID = version.resellerID {
            return try await pool.query(
                """
                SELECT prefix, price, status FROM retail_price_entry
                WHERE reseller_id = \(resellerID) AND version_id = \(version.id) AND (\(prefix)::text IS NULL OR prefix > \(prefix)::text)
                ORDER BY prefix LIMIT \(limit)
                """
            ).decodeRecords(PriceEntryRecord.self)
        }
        return try await pool.query(
            """
            SELECT prefix, price, status FROM platform_price_entry
            WHERE version_id = \(version.id) AND (\(prefix)::text IS NULL OR prefix > \(prefix)::text)
            ORDER BY prefix LIMIT \(limit)
            """
        ).decodeRecords(PriceEntryRecord.self)
    }

    package enum CreateVersionResult: Sendable {
        /// Created; `warnings` are the losses an allowLoss list accepted.
        case created(PriceVersionRecord, warnings: [PriceLoss])
        /// A retail version below wholesale on a list without allowLoss: nothing was stored.
        case refusedForLoss([PriceLoss])
        /// `effectiveFrom` is before the database's now.
        case effectiveInThePast(now: Date)
        /// The list already has a version taking effect at exactly this instant.
        case effectiveFromTaken
    }

    private struct LossRefusal: Error { var losses: [PriceLoss] }

    /// Creates a complete version of `list` from validated entries, all or nothing. Retail versions are checked
    /// against the wholesale prices in force for the reseller while the version is (see ``losses``).
    package func createVersion(
        of list: PriceListRecord, effectiveFrom: Date?, note: String?, entries: [PriceEntryInput], by actor: AuditActor
    ) async throws -> CreateVersionResult {
        do {
            return try await pool.withTransaction { connection in
                // Versions of one list are created one at a time; allow_loss is read under the same lock.
                let allowLoss: Bool
                if let resellerID = list.resellerID {
                    allowLoss = try await connection.query(
                        """
                        SELECT allow_loss FROM retail_price_list WHERE reseller_id = \(resellerID) AND id = \(list.id) FOR UPDATE
                        """
                    ).first(as: Bool.self)!
                } else {
                    try await connection.query("SELECT 1 FROM platform_price_list WHERE id = \(list.id) FOR UPDATE")
                    allowLoss = false
                }
                // The clock after the lock, not the transaction's start: a version that waited for the lock
                // behind another must not take effect before the one that committed first.
                let (now, effective) = try await connection.query(
                    "SELECT clock_timestamp(), coalesce(\(effectiveFrom)::timestamptz, clock_timestamp())"
                ).first(as: (Date, Date).self)!
                if let effectiveFrom, effectiveFrom < now { return .effectiveInThePast(now: now) }

                let prefixes = entries.map(\.prefix)
                let prices = entries.map { $0.price?.minorUnits }
                let statuses = entries.map(\.status.rawValue)
                let versionID: UUID
                if let resellerID = list.resellerID {
                    versionID = try await connection.query(
                        """
                        INSERT INTO retail_price_version (reseller_id, price_list_id, effective_from, entry_count, note, created_by)
                        VALUES (\(resellerID), \(list.id), \(effective), \(entries.count), \(note), \(actor.actor)) RETURNING id
                        """
                    ).first(as: UUID.self)!
                    try await connection.query(
                        """
                        INSERT INTO retail_price_entry (reseller_id, version_id, prefix, price, status)
                        SELECT \(resellerID), \(versionID), e.prefix, e.price, e.status
                        FROM unnest(\(prefixes)::text[], \(prices)::bigint[], \(statuses)::text[]) AS e (prefix, price, status)
                        """)
                } else {
                    versionID = try await connection.query(
                        """
                        INSERT INTO platform_price_version (price_list_id, effective_from, entry_count, note, created_by)
                        VALUES (\(list.id), \(effective), \(entries.count), \(note), \(actor.actor)) RETURNING id
                        """
                    ).first(as: UUID.self)!
                    try await connection.query(
                        """
                        INSERT INTO platform_price_entry (version_id, prefix, price, status)
                        SELECT \(versionID), e.prefix, e.price, e.status
                        FROM unnest(\(prefixes)::text[], \(prices)::bigint[], \(statuses)::text[]) AS e (prefix, price, status)
                        """)
                }
                var warnings: [PriceLoss] = []
                if let resellerID = list.resellerID {
                    warnings = try await Self.losses(
                        on: connection, resellerID: resellerID, listID: list.id, versionID: versionID,
                        effectiveFrom: effective)
                    if !warnings.isEmpty, !allowLoss { throw LossRefusal(losses: warnings) }
                }
                let version = try await Self.version(on: connection, id: versionID, of: list)!
                try await AuditRepository.record(
                    on: connection, by: actor, action: "price_list_version.create", targetType: "price_list_version",
                    targetID: versionID,
                    resellerID: list.resellerID, before: nil, after: version)
                return .created(version, warnings: warnings)
            }
        } catch let refusal as LossRefusal {
            return .refusedForLoss(refusal.losses)
        } catch let error as PostgresError where error.isUniqueViolation {
            return .effectiveFromTaken
        }
    }

    /// The prefixes where a retail version prices below the wholesale list that applies to the reseller, over every
    /// wholesale version in force while the retail version is (from its `effective_from` until the list's next
    /// version, as far as both are known now).
    ///
    /// Exact for longest-prefix pricing: the probes are every prefix of either side, and each number is priced in both
    /// layers exactly as its longest probe is, so a loss on any number shows as a loss on some probe. A retail 44
    /// below a wholesale 4479 is found (as 44 vs 4479), and one above it is not blamed for a 4479 it does not price.
    private static func losses(
        on connection: PostgresConnection, resellerID: UUID, listID: UUID, versionID: UUID, effectiveFrom: Date
    ) async throws -> [PriceLoss] {
        try await connection.query(
            """
            WITH period AS (
                SELECT \(effectiveFrom)::timestamptz AS starts,
                       (SELECT min(effective_from) FROM retail_price_version
                        WHERE reseller_id = \(resellerID) AND price_list_id = \(listID) AND effective_from > \(effectiveFrom)::timestamptz) AS ends
            ), wholesale AS (
                SELECT v.id FROM platform_price_version v, period p
                WHERE v.price_list_id = effective_wholesale_price_list(\(resellerID))
                  AND (v.id = platform_price_version_at(v.price_list_id, p.starts)
                       OR (v.effective_from > p.starts AND (p.ends IS NULL OR v.effective_from < p.ends)))
            ), probe AS (
                SELECT w.id AS wholesale_version_id, e.prefix FROM wholesale w JOIN platform_price_entry e ON e.version_id = w.id
                UNION
                SELECT w.id, r.prefix FROM wholesale w CROSS JOIN retail_price_entry r
                WHERE r.reseller_id = \(resellerID) AND r.version_id = \(versionID)
            )
            SELECT rm.prefix AS retail_prefix, rm.price AS retail_price, wm.prefix AS wholesale_prefix, max(wm.price) AS wholesale_price
            FROM probe p
            CROSS JOIN LATERAL retail_price_match(\(resellerID), \(versionID), p.prefix) rm
            CROSS JOIN LATERAL platform_price_match(p.wholesale_version_id, p.prefix) wm
            WHERE rm.status = 'sellable' AND wm.status = 'sellable' AND rm.price < wm.price
            GROUP BY rm.prefix, rm.price, wm.prefix
            ORDER BY rm.prefix, wm.prefix
            """
        ).decode((String, Int64, String, Int64).self).map {
            PriceLoss(
                retailPrefix: $0.0, retailPrice: Money(minorUnits: $0.1), wholesalePrefix: $0.2,
                wholesalePrice: Money(minorUnits: $0.3))
        }
    }

    // MARK: - Platform defaults

    private static func defaults(on connection: PostgresConnection) async throws -> PriceDefaultsRecord {
        try await connection.query(
            """
            SELECT effective_upstream_cost_price_list() AS upstream_cost_price_list_id,
                   (SELECT price_list_id FROM platform_price_default WHERE layer = 'wholesale') AS wholesale_price_list_id
            """
        ).decodeRecords(PriceDefaultsRecord.self)[0]
    }

    package func defaults() async throws -> PriceDefaultsRecord {
        try await pool.withConnection { try await Self.defaults(on: $0) }
    }

    /// Sets the given defaults; the callers have checked that each id names a platform list of its layer.
    package func updateDefaults(upstreamCost: UUID?, wholesale: UUID?, by actor: AuditActor) async throws
        -> PriceDefaultsRecord
    {
        try await pool.withTransaction { connection in
            let before = try await Self.defaults(on: connection)
            for (layer, id) in [(PriceLayer.upstreamCost, upstreamCost), (.wholesale, wholesale)] {
                guard let id else { continue }
                try await connection.query(
                    """
                    INSERT INTO platform_price_default (layer, price_list_id, assigned_by) VALUES (\(layer.rawValue), \(id), \(actor.actor))
                    ON CONFLICT (layer) DO UPDATE SET price_list_id = excluded.price_list_id, assigned_by = excluded.assigned_by, assigned_at = now()
                    WHERE platform_price_default.price_list_id <> excluded.price_list_id
                    """)
            }
            let after = try await Self.defaults(on: connection)
            if after != before {
                try await AuditRepository.record(
                    on: connection, by: actor, action: "price_defaults.update", targetType: "price_defaults",
                    targetID: "platform",
                    resellerID: nil, before: before, after: after)
            }
            return after
        }
    }

    // MARK: - Which lists apply

    private struct AppliedRow: Decodable {
        var listID: UUID?
        var own: Bool
        var versionID: UUID?
        var effectiveFrom: Date?

        enum CodingKeys: String, CodingKey {
            case own
            case listID = "list_id"
            case versionID = "version_id"
            case effectiveFrom = "effective_from"
        }

        func record(fallback: AppliedPriceListRecord.Source) -> AppliedPriceListRecord {
            AppliedPriceListRecord(
                source: listID == nil ? .none : own ? .own : fallback, priceListID: listID, currentVersionID: versionID,
                currentEffectiveFrom: effectiveFrom)
        }
    }

    private static func resellerPricing(on connection: PostgresConnection, resellerID: UUID) async throws
        -> ResellerPricingRecord?
    {
        let rows = try await connection.query(
            """
            SELECT 1 AS layer_order, w.list AS list_id, EXISTS (SELECT 1 FROM reseller_wholesale_price_list a WHERE a.reseller_id = r.id) AS own,
                   wv.id AS version_id, wv.effective_from
            FROM reseller r
            CROSS JOIN LATERAL (SELECT effective_wholesale_price_list(r.id) AS list) w
            LEFT JOIN platform_price_version wv ON wv.id = platform_price_version_at(w.list, now())
            WHERE r.id = \(resellerID)
            UNION ALL
            SELECT 2, d.price_list_id, true, rv.id, rv.effective_from
            FROM reseller r
            LEFT JOIN reseller_default_retail_price_list d ON d.reseller_id = r.id
            LEFT JOIN retail_price_version rv ON rv.reseller_id = r.id AND rv.id = retail_price_version_at(r.id, d.price_list_id, now())
            WHERE r.id = \(resellerID)
            ORDER BY layer_order
            """
        ).decodeRecords(AppliedRow.self)
        guard rows.count == 2 else { return nil }
        return ResellerPricingRecord(
            resellerID: resellerID, wholesale: rows[0].record(fallback: .default),
            defaultRetail: rows[1].record(fallback: .own))
    }

    package func resellerPricing(resellerID: UUID) async throws -> ResellerPricingRecord? {
        try await pool.withConnection { try await Self.resellerPricing(on: $0, resellerID: resellerID) }
    }

    private static func subAccountPricing(on connection: PostgresConnection, subAccountID: UUID) async throws
        -> SubAccountPricingRecord?
    {
        guard
            let row = try await connection.query(
                """
                SELECT s.reseller_id, l.list AS list_id,
                       EXISTS (SELECT 1 FROM sub_account_retail_price_list a WHERE a.reseller_id = s.reseller_id AND a.sub_account_id = s.id) AS own,
                       v.id AS version_id, v.effective_from
                FROM sub_account s
                CROSS JOIN LATERAL (SELECT effective_retail_price_list(s.reseller_id, s.id) AS list) l
                LEFT JOIN retail_price_version v ON v.reseller_id = s.reseller_id AND v.id = retail_price_version_at(s.reseller_id, l.list, now())
                WHERE s.id = \(subAccountID)
                """
            ).first(as: (UUID, UUID?, Bool, UUID?, Date?).self)
        else { return nil }
        let applied = AppliedRow(listID: row.1, own: row.2, versionID: row.3, effectiveFrom: row.4)
        return SubAccountPricingRecord(
            resellerID: row.0, subAccountID: subAccountID, retail: applied.record(fallback: .default))
    }

    package func subAccountPricing(subAccountID: UUID) async throws -> SubAccountPricingRecord? {
        try await pool.withConnection { try await Self.subAccountPricing(on: $0, subAccountID: subAccountID) }
    }

    /// Gives a reseller its own wholesale list (`priceListID` nil: the platform default applies again). The caller has
    /// checked that the list is a wholesale list. Assigning what is already assigned changes and records nothing.
    package func assignWholesale(resellerID: UUID, priceListID: UUID?, by actor: AuditActor) async throws
        -> ResellerPricingRecord
    {
        try await pool.withTransaction { connection in
            try await ResellerAssignment.set(
                priceListID,
                .init(
                    table: "reseller_wholesale_price_list", column: "price_list_id",
                    setAction: "reseller.wholesale_price_list.assign",
                    clearAction: "reseller.wholesale_price_list.unassign", auditField: "priceListId"),
                resellerID: resellerID, by: actor, on: connection)
            return try await Self.resellerPricing(on: connection, resellerID: resellerID)!
        }
    }

    /// Sets (or with nil clears) the retail list of the reseller's sub-accounts without one of their own. The caller
    /// has checked that the list is one of the reseller's retail lists.
    package func setDefaultRetail(resellerID: UUID, priceListID: UUID?, by actor: AuditActor) async throws
        -> ResellerPricingRecord
    {
        try await pool.withTransaction { connection in
            try await ResellerAssignment.set(
                priceListID,
                .init(
                    table: "reseller_default_retail_price_list", column: "price_list_id",
                    setAction: "reseller.default_retail_price_list.set",
                    clearAction: "reseller.default_retail_price_list.clear", auditField: "priceListId"),
                resellerID: resellerID, by: actor, on: connection)
            return try await Self.resellerPricing(on: connection, resellerID: resellerID)!
        }
    }

    /// Gives a sub-account its own retail list (nil: the reseller's default applies again). The caller has checked
    /// that the list is one of the sub-account's reseller's retail lists (the foreign key insists too).
    package func assignRetail(resellerID: UUID, subAccountID: UUID, priceListID: UUID?, by actor: AuditActor)
        async throws -> SubAccountPricingRecord
    {
        try await pool.withTransaction { connection in
            let before = try await connection.query(
                """
                SELECT price_list_id FROM sub_account_retail_price_list WHERE reseller_id = \(resellerID) AND sub_account_id = \(subAccountID) FOR UPDATE
                """
            ).first(as: UUID.self)
            if before != priceListID {
                if let priceListID {
                    try await connection.query(
                        """
                        INSERT INTO sub_account_retail_price_list (reseller_id, sub_account_id, price_list_id, assigned_by)
                        VALUES (\(resellerID), \(subAccountID), \(priceListID), \(actor.actor))
                        ON CONFLICT (reseller_id, sub_account_id) DO UPDATE
                            SET price_list_id = excluded.price_list_id, assigned_by = excluded.assigned_by, assigned_at = now()
                        """)
                } else {
                    try await connection.query(
                        "DELETE FROM sub_account_retail_price_list WHERE reseller_id = \(resellerID) AND sub_account_id = \(subAccountID)"
                    )
                }
                try await AuditRepository.record(
                    on: connection, by: actor,
                    action: priceListID == nil
                        ? "sub_account.retail_price_list.unassign" : "sub_account.retail_price_list.assign",
                    targetType: "sub_account", targetID: subAccountID, resellerID: resellerID,
                    before: Assignment(priceListId: before), after: Assignment(priceListId: priceListID))
            }
            return try await Self.subAccountPricing(on: connection, subAccountID: subAccountID)!
        }
    }

    /// How assignments appear in the audit log.
    private struct Assignment: Encodable {
        var priceListId: UUID?
    }
}
