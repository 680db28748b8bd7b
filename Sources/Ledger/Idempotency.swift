import Crypto
import Foundation
import PostgresLibpq
import ResellerCore

/// Runs money-moving requests at most once per `Idempotency-Key`.
///
/// The key is scoped to the caller (the admin, a reseller, a sub-account), so two tenants can use the
/// same key. The request hash covers the operation, its path ids and the request's validated values
/// (so `"100"` and `"100.0000"` are the same request), as canonical JSON. The
/// operation's effects, its audit row and the stored response commit in one transaction, so a
/// response is stored exactly when the money moved. A failed operation stores nothing.
package struct Idempotency: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// What identifies one request: who, which key, which operation on what, and the body's hash.
    package struct Request: Sendable {
        package var scope: String
        package var key: String
        package var operation: String
        package var hash: Data

        package init(scope: String, key: String, operation: String, hash: Data) {
            self.scope = scope
            self.key = key
            self.operation = operation
            self.hash = hash
        }
    }

    package static let canonicalEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = APIDates.encodingStrategy
        return encoder
    }()

    /// Checks the key (1–255 visible ASCII characters) and hashes the request.
    package static func request(
        principal: Principal, key: String, operation: String, body: some Encodable
    ) throws -> Request {
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw DomainError.validation([
                .init(field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters")
            ])
        }
        let scope =
            switch principal.role {
            case .admin: "admin"
            case .reseller: "reseller:\(principal.resellerID?.uuidString.lowercased() ?? "")"
            case .subAccount: "sub_account:\(principal.subAccountID?.uuidString.lowercased() ?? "")"
            }
        var hasher = SHA256()
        hasher.update(data: Data(operation.utf8))
        hasher.update(data: [0])
        hasher.update(data: try canonicalEncoder.encode(body))
        return Request(scope: scope, key: key, operation: operation, hash: Data(hasher.finalize()))
    }

    /// Runs `body` once for `request`: a replay decodes the stored response (`replayed` true).
    package func run<Response: Codable & Sendable>(
        _ request: Request, status: Int, _ body: (PostgresConnection) async throws -> Response
    ) async throws -> (response: Response, replayed: Bool) {
        try await pool.withTransaction { connection in
            guard try await IdempotencyRepository.tryLock(scope: request.scope, key: request.key, on: connection) else {
                throw DomainError(
                    .conflict, code: "idempotency_in_progress",
                    detail: "A request with this Idempotency-Key is still being processed; retry it shortly.")
            }
            if let stored = try await IdempotencyRepository.find(scope: request.scope, key: request.key, on: connection)
            {
                guard stored.operation == request.operation, stored.requestHash == request.hash else {
                    throw DomainError(
                        .unprocessable, code: "idempotency_key_reused",
                        detail:
                            "This Idempotency-Key was used for a different request; use a new key for a new request.")
                }
                return (try JSONDecoder.api.decode(Response.self, from: Data(stored.response.utf8)), true)
            }
            let response = try await body(connection)
            let encoded = String(decoding: try Self.canonicalEncoder.encode(response), as: UTF8.self)
            try await IdempotencyRepository.store(
                scope: request.scope, key: request.key,
                record: IdempotencyRecord(
                    operation: request.operation, requestHash: request.hash, statusCode: status, response: encoded),
                on: connection)
            return (response, false)
        }
    }
}

extension JSONDecoder {
    /// Decodes what `Idempotency` stored.
    package static let api: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = APIDates.decodingStrategy
        return decoder
    }()
}
