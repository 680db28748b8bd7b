import Foundation
import ResellerAPI
import ResellerCore
import Webhooks

/// Webhook endpoints of sub-accounts and resellers, their delivery log, redelivery and replay, and the admin's SSRF
/// exceptions. An endpoint belongs to a sub-account (its events) or to a reseller (its own events and all its
/// sub-accounts'); a sub-account sees only its own, a reseller its own and its sub-accounts', others get 404.
extension APIHandlers {
    package var webhookEndpoints: WebhookEndpointRepository { WebhookEndpointRepository(pool: pool) }

    package func listSubAccountWebhooks(_ input: Operations.ListSubAccountWebhooks.Input) async throws
        -> Operations.ListSubAccountWebhooks.Output
    {
        let (_, account) = try await findSubAccount(input.path.subAccountId)
        let items = try await webhookEndpoints.list(resellerID: account.resellerID, subAccountID: account.id)
        return .ok(.init(body: .json(.init(items: items.map(Self.schema)))))
    }

    package func createSubAccountWebhook(_ input: Operations.CreateSubAccountWebhook.Input) async throws
        -> Operations.CreateSubAccountWebhook.Output
    {
        let (principal, account) = try await findSubAccount(input.path.subAccountId)
        // The admin reads tenants' webhooks; the tenants register them.
        try Access.ensure(principal, isOneOf: .reseller, .subAccount)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        guard account.status != .closed else { throw APIProblem.conflict("The sub-account is closed.") }
        let (url, format, types, description) = try await validatedWebhook(body)
        let (record, secret) = try await webhookEndpoints.create(
            resellerID: account.resellerID, subAccountID: account.id, url: url, format: format, eventTypes: types,
            description: description,
            by: AuditActor(principal))
        return .created(.init(body: .json(.init(webhook: Self.schema(record), secret: secret))))
    }

    package func listResellerWebhooks(_ input: Operations.ListResellerWebhooks.Input) async throws
        -> Operations.ListResellerWebhooks.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        _ = try Access.requireReseller(id, roles: .admin, .reseller)
        guard try await resellers.find(id: id) != nil else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        let items = try await webhookEndpoints.list(resellerID: id, subAccountID: nil)
        return .ok(.init(body: .json(.init(items: items.map(Self.schema)))))
    }

    package func createResellerWebhook(_ input: Operations.CreateResellerWebhook.Input) async throws
        -> Operations.CreateResellerWebhook.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .reseller)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        guard let reseller = try await resellers.find(id: id) else {
            throw APIProblem.notFound("No reseller \(id.apiString).")
        }
        guard reseller.status != .closed else { throw APIProblem.conflict("The reseller is closed.") }
        let (url, format, types, description) = try await validatedWebhook(body)
        let (record, secret) = try await webhookEndpoints.create(
            resellerID: id, subAccountID: nil, url: url, format: format, eventTypes: types, description: description,
            by: AuditActor(principal))
        return .created(.init(body: .json(.init(webhook: Self.schema(record), secret: secret))))
    }

    package func getWebhook(_ input: Operations.GetWebhook.Input) async throws -> Operations.GetWebhook.Output {
        let (_, record) = try await findWebhook(input.path.webhookId)
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func updateWebhook(_ input: Operations.UpdateWebhook.Input) async throws -> Operations.UpdateWebhook.Output
    {
        let (principal, record) = try await changeableWebhook(input.path.webhookId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        // The format is fixed: pending deliveries and the receiver's code are made for it.
        if let format = body.format, format.rawValue != record.format.rawValue {
            throw APIProblem.conflict(
                "The webhook's format is \(record.format.rawValue) and cannot be changed; register a new endpoint instead."
            )
        }
        var validator = Validator()
        let description = validator.text(body.description, field: "/description", minimum: 0, maximum: 200)
        let types = body.eventTypes.map {
            Self.eventTypes($0, format: record.format, platform: record.resellerID == nil, validator: &validator)
        }
        try validator.check()
        if let url = body.url { try await checkWebhookURL(url) }
        let changes = WebhookEndpointRepository.Changes(
            url: body.url, eventTypes: types, description: description,
            status: body.status.flatMap { WebhookEndpointStatus(rawValue: $0.rawValue) })
        guard
            let updated = try await webhookEndpoints.update(
                id: record.id, scope: principal.scope, changes, by: AuditActor(principal))
        else {
            throw APIProblem.notFound("No webhook \(record.id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(updated))))
    }

    package func deleteWebhook(_ input: Operations.DeleteWebhook.Input) async throws -> Operations.DeleteWebhook.Output
    {
        let (principal, record) = try await changeableWebhook(input.path.webhookId)
        guard try await webhookEndpoints.delete(id: record.id, scope: principal.scope, by: AuditActor(principal)) else {
            throw APIProblem.notFound("No webhook \(record.id.apiString).")
        }
        return .noContent(.init())
    }

    package func rotateWebhookSecret(_ input: Operations.RotateWebhookSecret.Input) async throws
        -> Operations.RotateWebhookSecret.Output
    {
        let (principal, record) = try await changeableWebhook(input.path.webhookId)
        var hours = 24
        if case .json(let body) = input.body, let given = body.previousSecretValidHours {
            guard (0...168).contains(given) else {
                throw APIProblem.validation([.init(field: "/previousSecretValidHours", message: "must be 0 to 168")])
            }
            hours = Int(given)
        }
        guard
            let (rotated, secret) = try await webhookEndpoints.rotateSecret(
                id: record.id, scope: principal.scope, previousValidFor: .seconds(hours * 3600),
                by: AuditActor(principal))
        else { throw APIProblem.notFound("No webhook \(record.id.apiString).") }
        return .ok(.init(body: .json(.init(webhook: Self.schema(rotated), secret: secret))))
    }

    package func listWebhookDeliveries(_ input: Operations.ListWebhookDeliveries.Input) async throws
        -> Operations.ListWebhookDeliveries.Output
    {
        let (_, record) = try await findWebhook(input.path.webhookId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        try validator.check()
        let items = try await webhookEndpoints.deliveries(
            endpointID: record.id, state: input.query.state.flatMap { WebhookDeliveryState(rawValue: $0.rawValue) },
            limit: limit)
        return .ok(.init(body: .json(.init(items: try items.map(Self.schema)))))
    }

    package func redeliverWebhookDelivery(_ input: Operations.RedeliverWebhookDelivery.Input) async throws
        -> Operations.RedeliverWebhookDelivery.Output
    {
        let (_, record) = try await changeableWebhook(input.path.webhookId)
        let deliveryID = try pathID(input.path.deliveryId, "delivery")
        guard record.status == .active else { throw APIProblem.conflict("The webhook is disabled; enable it first.") }
        let redelivered: WebhookDeliveryRecord?
        do {
            redelivered = try await webhookEndpoints.redeliver(endpointID: record.id, deliveryID: deliveryID)
        } catch let refusal as WebhookRequeueRefusal {
            throw Self.problem(refusal, "redeliveries")
        }
        guard let delivery = redelivered else { throw APIProblem.notFound("No delivery \(deliveryID.apiString).") }
        return .accepted(.init(body: .json(try Self.schema(delivery))))
    }

    package func replayWebhookEvents(_ input: Operations.ReplayWebhookEvents.Input) async throws
        -> Operations.ReplayWebhookEvents.Output
    {
        let (_, record) = try await changeableWebhook(input.path.webhookId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        guard body.from < body.to else {
            throw APIProblem.validation([.init(field: "/to", message: "must be after from")])
        }
        guard record.status == .active else { throw APIProblem.conflict("The webhook is disabled; enable it first.") }
        let replayed: Int?
        do {
            replayed = try await webhookEndpoints.replay(record, from: body.from, to: body.to)
        } catch let refusal as WebhookRequeueRefusal {
            throw Self.problem(refusal, "replays")
        }
        guard let queued = replayed else {
            throw APIProblem.validation([
                .init(
                    field: "/to",
                    message:
                        "the period holds more than \(WebhookEndpointRepository.replayLimit) events; replay a shorter one"
                )
            ])
        }
        return .accepted(.init(body: .json(.init(queued: Int32(queued)))))
    }

    package func getWebhookSettings(_ input: Operations.GetWebhookSettings.Input) async throws
        -> Operations.GetWebhookSettings.Output
    {
        _ = try Access.require(.admin)
        return .ok(.init(body: .json(.init(allowedRanges: try await webhookEndpoints.allowedRanges()))))
    }

    package func setWebhookSettings(_ input: Operations.SetWebhookSettings.Input) async throws
        -> Operations.SetWebhookSettings.Output
    {
        let principal = try Access.require(.admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        if body.allowedRanges.count > 50 { validator.fail("/allowedRanges", "must hold at most 50 ranges") }
        var ranges: [String] = []
        for (index, text) in body.allowedRanges.enumerated() {
            if let range = IPRange(text.trimmingCharacters(in: .whitespaces)) {
                ranges.append(range.description)
            } else {
                validator.fail("/allowedRanges/\(index)", "must be a CIDR range such as 127.0.0.0/8 or ::1/128")
            }
        }
        try validator.check()
        let stored = try await webhookEndpoints.setAllowedRanges(ranges, by: AuditActor(principal))
        return .ok(.init(body: .json(.init(allowedRanges: stored))))
    }

    /// The endpoint, when the caller may see it; otherwise 404.
    package func findWebhook(_ pathID: String) async throws -> (Principal, WebhookEndpointRecord) {
        let principal = try Access.principal()
        let id = try self.pathID(pathID, "webhook")
        guard let record = try await webhookEndpoints.find(id: id, scope: principal.scope) else {
            throw APIProblem.notFound("No webhook \(id.apiString).")
        }
        return (principal, record)
    }

    /// The endpoint, when the caller may change it: 404 unless visible, then 403 for the admin, who reads tenants'
    /// webhooks but neither changes nor resends them. A platform endpoint (no reseller) is the admin's own, and only a
    /// tenant's key never finds it.
    package func changeableWebhook(_ pathID: String) async throws -> (Principal, WebhookEndpointRecord) {
        let (principal, record) = try await findWebhook(pathID)
        if record.resellerID == nil {
            try Access.ensure(principal, isOneOf: .admin)
        } else {
            try Access.ensure(principal, isOneOf: .reseller, .subAccount)
        }
        return (principal, record)
    }

    package func listPlatformWebhooks(_ input: Operations.ListPlatformWebhooks.Input) async throws
        -> Operations.ListPlatformWebhooks.Output
    {
        _ = try Access.require(.admin)
        return .ok(.init(body: .json(.init(items: try await webhookEndpoints.listPlatform().map(Self.schema)))))
    }

    package func createPlatformWebhook(_ input: Operations.CreatePlatformWebhook.Input) async throws
        -> Operations.CreatePlatformWebhook.Output
    {
        let principal = try Access.require(.admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let (url, format, types, description) = try await validatedWebhook(body, platform: true)
        let (record, secret) = try await webhookEndpoints.create(
            resellerID: nil, subAccountID: nil, url: url, format: format, eventTypes: types, description: description,
            by: AuditActor(principal))
        return .created(.init(body: .json(.init(webhook: Self.schema(record), secret: secret))))
    }

    /// 429 with `Retry-After` past a rate, 409 past the pending cap (docs/webhooks.md, "Fairness and limits").
    private static func problem(_ refusal: WebhookRequeueRefusal, _ what: String) -> APIProblem {
        switch refusal {
        case .rateLimited(let calls, let window, let retryAfter):
            let seconds = Int(window.components.seconds)
            return .rateLimited(
                "At most \(calls) \(what) of one webhook per \(seconds) seconds; retry in \(retryAfter.components.seconds) s.",
                wait: retryAfter)
        case .overCap(let pending, let adding, let cap):
            return .conflict(
                "The webhook has \(pending) pending deliveries; \(adding) more would pass the limit of \(cap). "
                    + "Let the receiver catch up, or replay a shorter period.")
        }
    }

    /// The URL, format, event types and description of a registration; a `1601` endpoint's types default to (and can
    /// only be) `message.status_changed` (`WebhookFormat.allowedEventTypes`).
    private func validatedWebhook(_ body: Components.Schemas.WebhookCreate, platform: Bool = false) async throws -> (
        String, WebhookFormat, [WebhookEventType], String?
    ) {
        var validator = Validator()
        let format = body.format.flatMap { WebhookFormat(rawValue: $0.rawValue) } ?? .signed
        if platform && format != .signed { validator.fail("/format", "a platform endpoint is signed") }
        let description = validator.text(body.description, field: "/description", minimum: 0, maximum: 200)
        let types =
            format == .legacy1601 && body.eventTypes == nil
            ? Array(format.allowedEventTypes)
            : Self.eventTypes(body.eventTypes ?? [], format: format, platform: platform, validator: &validator)
        try validator.check()
        try await checkWebhookURL(body.url)
        return (body.url, format, types, description.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The distinct types, sorted; each must be one `format` receives: for a platform endpoint, platform events only;
    /// for a tenant's, never one.
    private static func eventTypes(
        _ types: [Components.Schemas.WebhookEventType], format: WebhookFormat, platform: Bool,
        validator: inout Validator
    ) -> [WebhookEventType] {
        let names = Set(types.compactMap { WebhookEventType(rawValue: $0.rawValue) }).sorted()
        let allowed = platform ? WebhookEventType.platformEvents : format.allowedEventTypes
        if names.isEmpty {
            validator.fail("/eventTypes", "must name at least one event type")
        } else if !allowed.isSuperset(of: names) {
            let list = allowed.sorted().map(\.rawValue).joined(separator: ", ")
            validator.fail(
                "/eventTypes",
                platform
                    ? "a platform endpoint gets \(list) only"
                    : "a \(format.rawValue) endpoint gets \(list) only")
        }
        return names
    }

    /// 422 (on `field`) unless the URL may receive deliveries (`WebhookURLPolicy`).
    package func checkWebhookURL(_ url: String, field: String = "/url") async throws {
        try await WebhookURLPolicy(endpoints: webhookEndpoints).check(url, field: field)
    }

    package static func schema(_ record: WebhookEndpointRecord) -> Components.Schemas.Webhook {
        .init(
            id: record.id.apiString, resellerId: record.resellerID?.apiString,
            subAccountId: record.subAccountID?.apiString, url: record.url,
            format: .init(rawValue: record.format.rawValue)!,
            eventTypes: record.eventTypes.compactMap { Components.Schemas.WebhookEventType(rawValue: $0.rawValue) },
            description: record.description,
            status: .init(rawValue: record.status.rawValue)!, statusReason: record.statusReason,
            failingSince: record.failingSince,
            previousSecretExpiresAt: record.previousSecretExpiresAt, createdAt: record.createdAt,
            updatedAt: record.updatedAt)
    }

    private static let attemptDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard
                let date = try? Date(
                    text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
            else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "not a timestamp: \(text)"))
            }
            return date
        }
        return decoder
    }()

    package static func schema(_ record: WebhookDeliveryRecord) throws -> Components.Schemas.WebhookDelivery {
        let attempts = try attemptDecoder.decode([WebhookDeliveryRecord.Attempt].self, from: Data(record.log.utf8))
        let log: [Components.Schemas.WebhookAttempt] = attempts.map { attempt in
            Components.Schemas.WebhookAttempt(
                attempt: Int32(attempt.attempt), attemptedAt: attempt.attemptedAt,
                statusCode: attempt.statusCode.map { Int32($0) },
                latencyMs: Int32(attempt.latencyMs), error: attempt.error)
        }
        guard let eventType = Components.Schemas.WebhookEventType(rawValue: record.eventType.rawValue),
            let state = Components.Schemas.WebhookDelivery.StatePayload(rawValue: record.state.rawValue)
        else { throw APIProblem.internalError }
        let nextAttemptAt: Date? = record.state == .pending ? record.dueAt : nil
        let lastStatusCode: Int32? = record.lastStatusCode.map { Int32($0) }
        let lastLatencyMs: Int32? = record.lastLatencyMs.map { Int32($0) }
        return Components.Schemas.WebhookDelivery(
            id: record.id.apiString, webhookId: record.endpointID.apiString, eventId: record.eventID.apiString,
            eventType: eventType,
            occurredAt: record.occurredAt, state: state, attempts: Int32(record.attempts),
            lastStatusCode: lastStatusCode,
            lastLatencyMs: lastLatencyMs, lastError: record.lastError, nextAttemptAt: nextAttemptAt,
            giveUpAt: record.giveUpAt,
            createdAt: record.createdAt, finishedAt: record.finishedAt, log: log)
    }
}
