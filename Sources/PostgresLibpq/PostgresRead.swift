/// A statement and how its rows become a value: the unit `PostgresConnection.pipeline(_:)` sends several of in one
/// round trip. Repositories make them for the reads a request needs before it decides anything.
public struct PostgresRead<Value: Sendable>: Sendable {
    enum Source: Sendable {
        case query(PostgresQuery, @Sendable (PostgresRows) throws -> Value)
        /// Known without the database (a read that is not needed this time): nothing is sent for it.
        case value(Value)
    }

    let source: Source

    public init(_ query: PostgresQuery, decode: @escaping @Sendable (PostgresRows) throws -> Value) {
        source = .query(query, decode)
    }

    private init(source: Source) {
        self.source = source
    }

    /// A read answered without the database: `value`, and nothing is sent.
    public static func constant(_ value: Value) -> PostgresRead<Value> { PostgresRead(source: .value(value)) }

    /// The statement to send; nil for a constant.
    var query: PostgresQuery? {
        if case .query(let query, _) = source { return query }
        return nil
    }

    /// The value, from the answer to `query` (nil for a constant).
    func value(of rows: PostgresRows?) throws -> Value {
        switch source {
        case .value(let value): return value
        case .query(_, let decode):
            guard let rows else {
                throw PostgresError(kind: .misuse, message: "a read of the pipeline got no answer")
            }
            return try decode(rows)
        }
    }
}

extension PostgresConnection {
    /// Runs one read.
    public func read<Value>(_ read: PostgresRead<Value>) async throws -> Value {
        guard let query = read.query else { return try read.value(of: nil) }
        return try read.value(of: try await self.query(query))
    }

    /// Runs independent reads in one round trip (`pipeline(_:)`: one snapshot outside a transaction block) and returns
    /// their values in order. Constants send nothing.
    public func pipeline<each Value>(_ reads: repeat PostgresRead<each Value>) async throws -> (repeat each Value) {
        var queries: [PostgresQuery] = []
        for read in repeat each reads {
            if let query = read.query { queries.append(query) }
        }
        var answers = try await pipeline(queries)[...]
        func next<V>(_ read: PostgresRead<V>) throws -> V {
            try read.value(of: read.query == nil ? nil : answers.popFirst())
        }
        return (repeat try next(each reads))
    }
}

extension PostgresPool {
    /// Runs one read on a connection of the pool.
    public func read<Value>(_ read: PostgresRead<Value>) async throws -> Value {
        try await withConnection { try await $0.read(read) }
    }
}
