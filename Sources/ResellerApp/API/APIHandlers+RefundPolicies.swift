import Foundation
import Messaging
import ResellerAPI
import ResellerCore

/// Refund policies: which final states of a message are charged. The reseller sets its sub-accounts' default and
/// per-sub-account overrides (retail leg); the admin sets what each reseller is charged (wholesale leg).
extension APIHandlers {
    package var refundPolicies: RefundPolicyRepository { RefundPolicyRepository(pool: pool) }

    package func getResellerRefundPolicy(_ input: Operations.GetResellerRefundPolicy.Input) async throws
        -> Operations.GetResellerRefundPolicy.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        _ = try Access.requireReseller(id, roles: .admin, .reseller)
        guard try await resellers.find(id: id) != nil else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        return .ok(.init(body: .json(try await resellerPolicy(id))))
    }

    package func setResellerRefundPolicy(_ input: Operations.SetResellerRefundPolicy.Input) async throws
        -> Operations.SetResellerRefundPolicy.Output
    {
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let id = try await changeResellerPolicy(
            input.path.resellerId, layer: input.path.layer.rawValue, states: Self.chargedStates(body))
        return .ok(.init(body: .json(try await resellerPolicy(id))))
    }

    package func clearResellerRefundPolicy(_ input: Operations.ClearResellerRefundPolicy.Input) async throws
        -> Operations.ClearResellerRefundPolicy.Output
    {
        let id = try await changeResellerPolicy(input.path.resellerId, layer: input.path.layer.rawValue, states: nil)
        return .ok(.init(body: .json(try await resellerPolicy(id))))
    }

    package func getSubAccountRefundPolicy(_ input: Operations.GetSubAccountRefundPolicy.Input) async throws
        -> Operations.GetSubAccountRefundPolicy.Output
    {
        let (_, account) = try await findSubAccount(input.path.subAccountId)
        return .ok(.init(body: .json(try await subAccountPolicy(account))))
    }

    package func setSubAccountRefundPolicy(_ input: Operations.SetSubAccountRefundPolicy.Input) async throws
        -> Operations.SetSubAccountRefundPolicy.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        try await refundPolicies.set(
            Self.chargedStates(body), layer: .retail, resellerID: account.resellerID, subAccountID: account.id,
            by: AuditActor(principal))
        return .ok(.init(body: .json(try await subAccountPolicy(account))))
    }

    package func clearSubAccountRefundPolicy(_ input: Operations.ClearSubAccountRefundPolicy.Input) async throws
        -> Operations.ClearSubAccountRefundPolicy.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        try await refundPolicies.set(
            nil, layer: .retail, resellerID: account.resellerID, subAccountID: account.id, by: AuditActor(principal))
        return .ok(.init(body: .json(try await subAccountPolicy(account))))
    }

    /// The retail leg is the reseller's to set, the wholesale leg the admin's.
    private func changeResellerPolicy(_ pathID: String, layer: String, states: Set<MessageStatus>?) async throws -> UUID
    {
        let id = try self.pathID(pathID, "reseller")
        guard let layer = RefundPolicyRepository.Layer(rawValue: layer) else {
            throw APIProblem.notFound("No such policy.")
        }
        let principal = try Access.requireReseller(id, roles: layer == .retail ? .reseller : .admin)
        guard try await resellers.find(id: id) != nil else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        try await refundPolicies.set(states, layer: layer, resellerID: id, subAccountID: nil, by: AuditActor(principal))
        return id
    }

    package static func chargedStates(_ body: Components.Schemas.RefundPolicyUpdate) -> Set<MessageStatus> {
        Set(body.chargedStates.compactMap { MessageStatus(rawValue: $0.rawValue) })
    }

    private func resellerPolicy(_ id: UUID) async throws -> Components.Schemas.ResellerRefundPolicy {
        let policy = try await refundPolicies.reseller(id)
        return .init(
            resellerId: id.apiString, retail: Self.schema(policy.retail), wholesale: Self.schema(policy.wholesale))
    }

    private func subAccountPolicy(_ account: SubAccountRecord) async throws -> Components.Schemas.SubAccountRefundPolicy
    {
        let policy = try await refundPolicies.subAccount(account.id, resellerID: account.resellerID)
        return .init(
            subAccountId: account.id.apiString, chargedStates: Self.states(policy),
            source: .init(rawValue: policy.source.rawValue)!)
    }

    package static func states(_ policy: PolicyInForce) -> [Components.Schemas.ChargedState] {
        policy.chargedStates.map(\.rawValue).sorted().compactMap(Components.Schemas.ChargedState.init(rawValue:))
    }

    package static func schema(_ policy: PolicyInForce) -> Components.Schemas.PolicyInForce {
        .init(chargedStates: states(policy), source: .init(rawValue: policy.source.rawValue)!)
    }
}
