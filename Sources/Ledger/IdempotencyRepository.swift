import Foundation
import PostgresLibpq

/// A stored answer to a money-moving request.
package struct IdempotencyRecord: Decodable, Sendable {
    package var operation: String
    package var requestHash: Data
    package var statusCode: Int
    package var response: String

    package init(operation: String, requestHash: Data, statusCode: Int, response: String) {
        self.operation = operation
        self.requestHash = requestHash
        self.statusCode = statusCode
        self.response = response
    }

    package enum CodingKeys: String, CodingKey {
        case operation, response
        case requestHash = "request_hash"
        case statusCode = "status_code"
    }
}

/// `idempotency_record`: keys, request hashes and responses, scoped per caller.
package struct IdempotencyRepository: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Takes the key's transaction-scoped advisory lock without waiting; false when another
    /// transaction holds it (a concurrent request with the same key).
    package static func tryLock(scope: String, key: String, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(\(scope + "\u{1F}" + key), 1601))"
        )
        .first(as: Bool.self) ?? false
    }

    package static func find(scope: String, key: String, on connection: PostgresConnection) async throws
        -> IdempotencyRecord?
    {
        try await connection.read(findRead(scope: scope, key: key))
    }

    /// The record stored under `key`, as a read that can share a round trip with others.
    package static func findRead(scope: String, key: String) -> PostgresRead<IdempotencyRecord?> {
        PostgresRead(
            """
            SELECT operation, request_hash, status_code, response::text AS response
            FROM idempotency_record WHERE scope = \(scope) AND key = \(key)
            """
        ) { try $0.decodeRecords(IdempotencyRecord.self).first }
    }

    package static func store(scope: String, key: String, record: IdempotencyRecord, on connection: PostgresConnection)
        async throws
    {
        try await connection.query(
            """
            INSERT INTO idempotency_record (scope, key, operation, request_hash, status_code, response)
            VALUES (\(scope), \(key), \(record.operation), \(record.requestHash), \(record.statusCode), \(record.response)::jsonb)
            """)
    }

    /// Deletes records older than `age`; returns how many.
    package func purge(olderThan age: Duration) async throws -> Int {
        let seconds = Double(age.components.seconds)
        return try await pool.query(
            """
            WITH gone AS (
                DELETE FROM idempotency_record WHERE created_at < now() - make_interval(secs => \(seconds)) RETURNING 1
            )
            SELECT count(*) FROM gone
            """
        ).first(as: Int.self) ?? 0
    }
}
