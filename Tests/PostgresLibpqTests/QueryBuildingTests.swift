import Foundation
import Testing

@testable import PostgresLibpq

@Suite struct QueryBuildingTests {
    @Test func interpolatedValuesBecomeNumberedBinds() {
        let name = "Ann"
        let age: Int? = nil
        let query: PostgresQuery = "SELECT * FROM t WHERE name = \(name) AND age = \(age) AND id = \(42)"
        #expect(query.sql == "SELECT * FROM t WHERE name = $1 AND age = $2 AND id = $3")
        #expect(query.binds.count == 3)
        #expect(query.binds[0] == PostgresBindValue(text: "Ann"))
        #expect(query.binds[1] == nil)
        #expect(query.binds[2] == PostgresBindValue(text: "42", typeOID: PostgresTypeOID.int8))
    }

    @Test func unescapedTextIsSplicedAndNamedAsSuch() {
        let table = "account"
        let query: PostgresQuery = "SELECT count(*) FROM \(unescaped: table) WHERE id = \(7)"
        #expect(query.sql == "SELECT count(*) FROM account WHERE id = $1")
        #expect(query.binds.count == 1)
    }

    @Test func nestedQueriesAreRenumberedOutsideQuotes() {
        let filter: PostgresQuery = "status = \("active") AND note <> '$1' AND tag = \("x")"
        let query: PostgresQuery = "SELECT 1 WHERE id = \(5) AND \(filter)"
        #expect(query.sql == "SELECT 1 WHERE id = $1 AND status = $2 AND note <> '$1' AND tag = $3")
        #expect(query.binds.count == 3)
    }

    @Test func arraysBecomeQuotedLiterals() {
        let values: [String?] = ["a", "b\"c", "d\\e", nil, ""]
        #expect(
            values.postgresBindValue
                == PostgresBindValue(text: #"{"a","b\"c","d\\e",NULL,""}"#, typeOID: PostgresTypeOID.textArray))
        #expect([1, 2, 3].postgresBindValue.typeOID == PostgresTypeOID.int8Array)
    }

    @Test func timestampsFormatAndParseInUTC() throws {
        let date = Date(timeIntervalSince1970: 1_764_144_529.123456)
        #expect(PostgresTimestamp.format(date) == "2025-11-26T08:08:49.123456Z")
        let before1970 = Date(timeIntervalSince1970: -1.5)
        #expect(PostgresTimestamp.format(before1970) == "1969-12-31T23:59:58.500000Z")
        func parse(_ text: String) -> Date? { Array(text.utf8).withUnsafeBytes { PostgresTimestamp.parse($0) } }
        #expect(parse("2025-11-26 08:08:49.123456+00") == date)
        #expect(parse("2025-11-26 10:08:49.123456+02") == date)
        #expect(parse("2025-11-26 02:38:49.123456-05:30") == date)
        #expect(parse("2025-11-26") == Date(timeIntervalSince1970: 1_764_115_200))
        #expect(parse("infinity") == nil)
        #expect(parse("2025-11-26 08:08") == nil)
    }
}
