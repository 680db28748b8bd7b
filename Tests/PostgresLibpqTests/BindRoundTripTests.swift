import Foundation
import PostgresTestSupport
import Testing

@testable import PostgresLibpq

@Suite struct BindRoundTripTests {
    @Test func textValuesRoundTripExactly() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                let megabyte = String(repeating: "0123456789abcdéf", count: 65_536)
                let samples = [
                    "", "plain", "Zoë & Ĳsbrand — ‘quoted’", "emoji 👩🏽‍💻🚀 and 𝄞", "tab\tnewline\nbackslash\\quote'\"",
                    megabyte,
                ]
                for sample in samples {
                    let back = try await pool.query("SELECT \(sample)::text").first(as: String.self)
                    #expect(back == sample)
                }
            }
        }
    }

    @Test func nullsDecodeAsNilAndFailForNonOptionals() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                let missing: String? = nil
                let row = try #require(try await pool.query("SELECT \(missing)::text AS a, NULL::int AS b").first)
                #expect(try row.decode(String?.self, column: 0) == nil)
                #expect(try row.decode(Int?.self, column: "b") == nil)
                #expect(throws: PostgresDecodingError.self) { try row.decode(Int.self, column: "b") }
            }
        }
    }

    @Test func everySupportedTypeRoundTrips() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                let id = UUID()
                let now = Date(timeIntervalSince1970: 1_764_144_529.654321)
                let bytes = Data((0..<1_048_576).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
                let row = try #require(
                    try await pool.query(
                        """
                        SELECT \(Int.max)::int8, \(Int64.min)::int8, \(Int32(-7))::int4, \(true)::bool, \(false)::bool,
                               \(0.1)::float8, \(-1.5e-300)::float8, \(id)::uuid, \(now)::timestamptz, \(bytes)::bytea,
                               \(Double.infinity)::float8
                        """
                    ).first)
                let decoded = try row.decode(
                    (Int, Int64, Int32, Bool, Bool, Double, Double, UUID, Date, Data, Double).self)
                #expect(decoded.0 == Int.max)
                #expect(decoded.1 == Int64.min)
                #expect(decoded.2 == -7)
                #expect(decoded.3 == true)
                #expect(decoded.4 == false)
                #expect(decoded.5 == 0.1)
                #expect(decoded.6 == -1.5e-300)
                #expect(decoded.7 == id)
                #expect(decoded.8 == now)
                #expect(decoded.9 == bytes)
                #expect(decoded.10 == .infinity)
            }
        }
    }

    @Test func arraysRoundTripThroughUnnest() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                let names: [String?] = ["a,b", "c\"d", nil, "e\\f", "", "NULL"]
                let back = try await pool.query("SELECT \(names)::text[]").first(as: [String?].self)
                #expect(back == names)
                let rows = try await pool.query(
                    "SELECT n, o FROM unnest(\([10, 20, 30])::int8[]) WITH ORDINALITY AS u(n, o) ORDER BY o")
                #expect(try rows.decode((Int, Int).self).map(\.0) == [10, 20, 30])
            }
        }
    }

    @Test func rowsDecodeIntoDecodableRecords() async throws {
        struct Account: Decodable, Equatable {
            enum Status: String, Decodable { case active, blocked }
            var id: Int
            var name: String
            var status: Status
            var note: String?
            var createdAt: Date
            enum CodingKeys: String, CodingKey {
                case id, name, status, note
                case createdAt = "created_at"
            }
        }
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                let records = try await pool.query(
                    """
                    SELECT 1 AS id, 'Ann' AS name, 'blocked' AS status, NULL::text AS note, '2026-01-02 03:04:05+00'::timestamptz AS created_at
                    """
                ).decodeRecords(Account.self)
                #expect(
                    records == [
                        Account(
                            id: 1, name: "Ann", status: .blocked, note: nil,
                            createdAt: Date(timeIntervalSince1970: 1_767_323_045))
                    ])
            }
        }
    }

    @Test func anInjectionStringStaysData() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                try await pool.query("CREATE TABLE victim (name text)")
                let hostile = "x'); DROP TABLE victim; --"
                try await pool.query("INSERT INTO victim (name) VALUES (\(hostile))")
                let stored = try await pool.query("SELECT name FROM victim").decode(String.self)
                #expect(stored == [hostile])
                let hostileIdentifier = "victim; DROP TABLE victim"
                let count = try await pool.query("SELECT count(*) FROM victim WHERE name = \(hostileIdentifier)").first(
                    as: Int.self)
                #expect(count == 0)
            }
        }
    }

    @Test func serverErrorsCarryEveryField() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                try await pool.query("CREATE TABLE member (username text CONSTRAINT member_username_key UNIQUE)")
                try await pool.query("INSERT INTO member VALUES (\("ann"))")
                let error = try await #require(throws: PostgresError.self) {
                    try await pool.query("INSERT INTO member VALUES (\("ann"))")
                }
                #expect(error.kind == .server)
                #expect(error.isUniqueViolation)
                #expect(error.sqlState == "23505")
                #expect(error.constraint == "member_username_key")
                #expect(error.table == "member")
                #expect(error.schema == "public")
                #expect(error.detail?.contains("(username)=(ann)") == true)
                #expect(error.severity == "ERROR")
                // The connection is fine afterwards.
                let value1 = try await pool.query("SELECT count(*) FROM member").first(as: Int.self)
                #expect(value1 == 1)
            }
        }
    }
}
