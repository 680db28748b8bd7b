import Foundation
import ResellerAPI
import ResellerCore

/// The caller's identity and API keys.
extension APIHandlers {
    package func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        let principal = try Access.principal()
        return .ok(
            .init(
                body: .json(
                    .init(
                        role: .init(rawValue: principal.role.rawValue)!, resellerId: principal.resellerID?.apiString,
                        subAccountId: principal.subAccountID?.apiString, keyId: principal.keyID.apiString))))
    }

    package func listApiKeys(_ input: Operations.ListApiKeys.Input) async throws -> Operations.ListApiKeys.Output {
        let principal = try Access.principal()
        let keys = try await apiKeys.list(owner: APIKeyOwner(principal))
        return .ok(.init(body: .json(.init(items: keys.map(Self.schema)))))
    }

    package func createApiKey(_ input: Operations.CreateApiKey.Input) async throws -> Operations.CreateApiKey.Output {
        let principal = try Access.principal()
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let name = try APIKeyRepository.validatedName(body.name)
        let (key, secret) = try await apiKeys.create(
            owner: APIKeyOwner(principal), name: name, by: AuditActor(principal))
        return .created(.init(body: .json(.init(key: Self.schema(key), secret: secret))))
    }

    package func revokeApiKey(_ input: Operations.RevokeApiKey.Input) async throws -> Operations.RevokeApiKey.Output {
        let principal = try Access.principal()
        let id = try pathID(input.path.keyId, "API key")
        guard try await apiKeys.revoke(id: id, scope: principal.scope, by: AuditActor(principal)) else {
            throw APIProblem.notFound("No API key \(id.apiString).")
        }
        return .noContent(.init())
    }

    package func listResellerApiKeys(_ input: Operations.ListResellerApiKeys.Input) async throws
        -> Operations.ListResellerApiKeys.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        _ = try Access.requireReseller(id, roles: .admin)
        guard try await resellers.find(id: id) != nil else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        let keys = try await apiKeys.list(owner: .reseller(id))
        return .ok(.init(body: .json(.init(items: keys.map(Self.schema)))))
    }

    package func createResellerApiKey(_ input: Operations.CreateResellerApiKey.Input) async throws
        -> Operations.CreateResellerApiKey.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let name = try APIKeyRepository.validatedName(body.name)
        guard let reseller = try await resellers.find(id: id) else {
            throw APIProblem.notFound("No reseller \(id.apiString).")
        }
        guard reseller.status != .closed else { throw APIProblem.conflict("The reseller is closed.") }
        let (key, secret) = try await apiKeys.create(owner: .reseller(id), name: name, by: AuditActor(principal))
        return .created(.init(body: .json(.init(key: Self.schema(key), secret: secret))))
    }

    package func listSubAccountApiKeys(_ input: Operations.ListSubAccountApiKeys.Input) async throws
        -> Operations.ListSubAccountApiKeys.Output
    {
        let (_, account) = try await visibleSubAccount(input.path.subAccountId)
        let id = account.id
        let keys = try await apiKeys.list(owner: .subAccount(resellerID: account.resellerID, subAccountID: id))
        return .ok(.init(body: .json(.init(items: keys.map(Self.schema)))))
    }

    package func createSubAccountApiKey(_ input: Operations.CreateSubAccountApiKey.Input) async throws
        -> Operations.CreateSubAccountApiKey.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        let id = account.id
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let name = try APIKeyRepository.validatedName(body.name)
        guard account.status != .closed else { throw APIProblem.conflict("The sub-account is closed.") }
        let (key, secret) = try await apiKeys.create(
            owner: .subAccount(resellerID: account.resellerID, subAccountID: id), name: name, by: AuditActor(principal))
        return .created(.init(body: .json(.init(key: Self.schema(key), secret: secret))))
    }
}
