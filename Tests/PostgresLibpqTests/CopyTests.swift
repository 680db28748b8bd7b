import Foundation
import PostgresTestSupport
import Testing

@testable import PostgresLibpq

@Suite struct CopyTests {
    /// Row `i` with text that needs every COPY escape, some non-ASCII, and a NULL now and then.
    static func fields(_ i: Int) -> [String?] {
        [
            String(i), "name \(i)\twith tab\\and backslash\nand newline ✓ \(i % 7 == 0 ? "🚀" : "é")",
            i % 10 == 0 ? nil : String(i * 3),
        ]
    }

    @Test func copyInThenOutOfAHundredThousandRowsRoundTripsExactly() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration) { pool in
                try await pool.query("CREATE TABLE bulk (id int8 PRIMARY KEY, label text NOT NULL, amount int8)")
                var expected: [UInt8] = []
                for i in 0..<100_000 {
                    for (index, field) in Self.fields(i).enumerated() {
                        if index > 0 { expected.append(UInt8(ascii: "\t")) }
                        if let field {
                            PostgresCopyText.appendEscaped(field, to: &expected)
                        } else {
                            expected += Array(#"\N"#.utf8)
                        }
                    }
                    expected.append(UInt8(ascii: "\n"))
                }
                let loaded = try await pool.withConnection { connection in
                    try await connection.copyIn("COPY bulk (id, label, amount) FROM STDIN") { writer in
                        for i in 0..<100_000 { try await writer.writeRow(Self.fields(i)) }
                    }
                }
                #expect(loaded == 100_000)
                let value1 = try await pool.query("SELECT label FROM bulk WHERE id = 70").first(as: String.self)
                #expect(value1 == Self.fields(70)[1])
                let value2 = try await pool.query("SELECT amount FROM bulk WHERE id = 20").first(as: Int?.self)
                #expect(value2 == .some(nil))

                var received: [UInt8] = []
                var chunks = 0
                let copied = try await pool.withConnection { connection in
                    try await connection.copyOut(
                        "COPY (SELECT id, label, amount FROM bulk ORDER BY id) TO STDOUT", chunkSize: 64 * 1024
                    ) { chunk in
                        received += chunk
                        chunks += 1
                    }
                }
                #expect(copied == 100_000)
                #expect(chunks > 10)  // streamed, not one buffer
                #expect(received.count == expected.count)
                #expect(received == expected)
            }
        }
    }

    struct Stop: Error {}

    @Test func aFailingWriterLoadsNothing() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                try await pool.query("CREATE TABLE bulk (id int8)")
                await #expect(throws: Stop.self) {
                    try await pool.withConnection { connection in
                        try await connection.copyIn("COPY bulk FROM STDIN") { writer in
                            for i in 0..<50_000 { try await writer.writeRow([String(i)]) }
                            throw Stop()
                        }
                    }
                }
                let value3 = try await pool.query("SELECT count(*) FROM bulk").first(as: Int.self)
                #expect(value3 == 0)
            }
        }
    }

    @Test func aConsumerThatStopsEarlyLeavesTheConnectionUsable() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                await #expect(throws: Stop.self) {
                    try await pool.withConnection { connection in
                        try await connection.copyOut(
                            "COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 2000000) g) TO STDOUT",
                            chunkSize: 16 * 1024
                        ) { _ in
                            throw Stop()
                        }
                    }
                }
                let value4 = try await pool.query("SELECT 41 + 1").first(as: Int.self)
                #expect(value4 == 42)
            }
        }
    }

    @Test func badCopyStatementsAreErrorsNotHangs() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            try await TestDatabase.withPool(configuration, maximumConnections: 1) { pool in
                let missing = try await #require(throws: PostgresError.self) {
                    try await pool.withConnection { try await $0.copyIn("COPY nowhere FROM STDIN") { _ in } }
                }
                #expect(missing.sqlState == "42P01")
                let misuse = try await #require(throws: PostgresError.self) {
                    try await pool.query("COPY (SELECT 1) TO STDOUT")
                }
                #expect(misuse.kind == .misuse)
                let value5 = try await pool.query("SELECT 1").first(as: Int.self)
                #expect(value5 == 1)
            }
        }
    }
}
