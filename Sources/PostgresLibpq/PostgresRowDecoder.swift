/// A `Decoder` over one row: each coding key is a column name.
struct PostgresRowDecoder: Decoder {
    let row: PostgresRow
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(KeyedContainer<Key>(row: row, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch(
            [Any].self, .init(codingPath: codingPath, debugDescription: "a row decodes only into a keyed container"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(
            Any.self, .init(codingPath: codingPath, debugDescription: "a row decodes only into a keyed container"))
    }

    struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let row: PostgresRow
        var codingPath: [any CodingKey]

        var allKeys: [Key] { row.rows.columns.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { row.rows.columnIndex(named: key.stringValue) != nil }

        private func column(_ key: Key) throws -> Int {
            guard let column = row.rows.columnIndex(named: key.stringValue) else {
                throw DecodingError.keyNotFound(
                    key, .init(codingPath: codingPath, debugDescription: "no column \(key.stringValue)"))
            }
            return column
        }

        func decodeNil(forKey key: Key) throws -> Bool {
            row.isNull(column: try column(key))
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let column = try column(key)
            if let decodable = type as? any PostgresDecodable.Type {
                return try decodeCell(decodable, column: column) as! T
            }
            // Types such as enums with a raw value decode through a single-value container.
            return try T(from: CellDecoder(row: row, column: column, codingPath: codingPath + [key]))
        }

        private func decodeCell<T: PostgresDecodable>(_ type: T.Type, column: Int) throws -> T {
            try row.decode(type, column: column)
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            throw DecodingError.typeMismatch(
                type, .init(codingPath: codingPath, debugDescription: "nested containers are not supported in rows"))
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            throw DecodingError.typeMismatch(
                [Any].self,
                .init(codingPath: codingPath, debugDescription: "nested containers are not supported in rows"))
        }

        func superDecoder() throws -> any Decoder { PostgresRowDecoder(row: row, codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder {
            PostgresRowDecoder(row: row, codingPath: codingPath + [key])
        }
    }

    /// Decodes one cell for `RawRepresentable` and other single-value `Decodable` types.
    struct CellDecoder: Decoder, SingleValueDecodingContainer {
        let row: PostgresRow
        let column: Int
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            throw DecodingError.typeMismatch(
                type, .init(codingPath: codingPath, debugDescription: "a cell is a single value"))
        }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            throw DecodingError.typeMismatch(
                [Any].self, .init(codingPath: codingPath, debugDescription: "a cell is a single value"))
        }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

        func decodeNil() -> Bool { row.isNull(column: column) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            if let decodable = type as? any PostgresDecodable.Type {
                return try open(decodable) as! T
            }
            return try T(from: self)
        }
        private func open<T: PostgresDecodable>(_ type: T.Type) throws -> T { try row.decode(type, column: column) }
    }
}
