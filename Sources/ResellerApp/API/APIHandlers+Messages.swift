import CompatibleGateway
import Contacts
import Foundation
import HTTPTypes
import Ledger
import Messaging
import ResellerAPI
import ResellerCore
import SMSCore

/// Sending, reading and cancelling the messages of a sub-account: the sub-account itself or its reseller sends and
/// cancels; the admin reads.
extension APIHandlers {
    package var messages: MessageRepository { MessageRepository(pool: pool) }

    /// The validated values of a send, which its idempotency hash covers.
    package struct SendValues: Encodable {
        package var sender: String?
        package var text: String
        package var recipients: [String]
        package var group: String?
        package var long: Bool
        package var scheduleAt: Date?
        package var reference: String?
        package var callbackUrl: String?
        package var skipInvalidRecipients: Bool

        package var request: SendRequest {
            SendRequest(
                sender: sender, text: text, recipients: recipients, long: long, scheduleAt: scheduleAt, groupName: group
            )
        }
    }

    package static let maximumTextLength = 5_000

    package static func sendValues(_ body: Components.Schemas.SendMessagesRequest) throws -> SendValues {
        var validator = Validator()
        let recipients = body.recipients ?? []
        if recipients.count > SendPlanner.maximumRecipients {
            validator.fail("/recipients", "must have at most \(SendPlanner.maximumRecipients) recipients")
        }
        if let index = recipients.firstIndex(where: { $0.count > 40 }) {
            validator.fail("/recipients/\(index)", "must be at most 40 characters")
        }
        if body.text.count > maximumTextLength {
            validator.fail("/text", "must be at most \(maximumTextLength) characters")
        }
        let group = body.group?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let group, group.isEmpty || group.count > 100 { validator.fail("/group", "must be 1 to 100 characters") }
        // Counted in Unicode scalars, as the column's CHECK counts them (graphemes would let combining marks through).
        if let reference = body.reference,
            !(1...SendRequestLimits.referenceLength).contains(reference.unicodeScalars.count)
        {
            validator.fail("/reference", "must be 1 to \(SendRequestLimits.referenceLength) characters")
        }
        if let url = body.callbackUrl {
            let parsed = URL(string: url)
            if url.count > 2_000 || parsed?.host?.isEmpty != false
                || !["http", "https"].contains(parsed?.scheme?.lowercased() ?? "")
            {
                validator.fail("/callbackUrl", "must be an http or https URL of at most 2000 characters")
            }
        }
        try validator.check()
        return SendValues(
            sender: body.sender, text: body.text, recipients: recipients, group: group, long: body.long ?? false,
            scheduleAt: body.scheduleAt, reference: body.reference, callbackUrl: body.callbackUrl,
            skipInvalidRecipients: body.invalidRecipients == .skip)
    }

    package func sendMessages(_ input: Operations.SendMessages.Input) async throws -> Operations.SendMessages.Output {
        let (principal, account) = try await findSubAccount(input.path.subAccountId)
        try Access.ensure(principal, isOneOf: .reseller, .subAccount)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let values = try Self.sendValues(body)
        // `test`: the upstream's test=ja, the same checks and answers with nothing written, and no key needed.
        let mode: SendMode =
            body.test == true
            ? .preview
            : .commit(
                try Idempotency.request(
                    principal: principal, key: input.headers.idempotencyKey,
                    operation: "sendMessages:\(account.id.apiString)", body: values))
        let options = SendOptions(
            reference: values.reference, callbackURL: values.callbackUrl,
            skipInvalidRecipients: values.skipInvalidRecipients)
        switch try await sending.send(
            account: account, request: values.request, options: options, actor: AuditActor(principal), mode: mode)
        {
        case .checked(let plan):
            return .ok(.init(body: .json(Self.schema(plan))))
        case .accepted(let batch, let replayed):
            return .created(.init(headers: .init(idempotentReplayed: replayed), body: .json(Self.schema(batch))))
        case .refused(let refusal):
            throw refusal
        }
    }

    package func listMessages(_ input: Operations.ListMessages.Input) async throws -> Operations.ListMessages.Output {
        let (principal, account) = try await findSubAccount(input.path.subAccountId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        var filter = MessageFilter(
            status: input.query.status.flatMap { MessageStatus(rawValue: $0.rawValue) }, acceptedFrom: input.query.from,
            acceptedBefore: input.query.to, reference: input.query.reference, limit: limit + 1)
        if let recipient = input.query.recipient {
            do { filter.recipient = try PhoneNumber(parsing: recipient).digits } catch {
                validator.fail("recipient", "is not a phone number")
            }
        }
        if let batch = input.query.batchId {
            filter.batchID = UUID(uuidString: batch)
            if filter.batchID == nil { validator.fail("batchId", "is not a UUID") }
        }
        if let cursor = input.query.cursor {
            filter.after = Self.messageCursor(cursor)
            if filter.after == nil { validator.fail("cursor", "is not a cursor this list returned") }
        }
        try validator.check()
        let page = Page(try await messages.list(subAccountID: account.id, filter: filter), limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map { Self.schema($0, for: principal, history: nil) },
                        nextCursor: page.nextCursor {
                            "\(Int64(($0.acceptedAt.timeIntervalSince1970 * 1_000_000).rounded()))_\($0.id.apiString)"
                        }))))
    }

    /// `<microseconds since 1970>_<message id>`, as `listMessages` hands it out.
    package static func messageCursor(_ text: String) -> (acceptedAt: Date, id: UUID)? {
        let parts = text.split(separator: "_")
        guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
            return nil
        }
        return (Date(timeIntervalSince1970: Double(micros) / 1_000_000), id)
    }

    package func getMessage(_ input: Operations.GetMessage.Input) async throws -> Operations.GetMessage.Output {
        let (principal, account) = try await findSubAccount(input.path.subAccountId)
        let id = try pathID(input.path.messageId, "message")
        guard let message = try await messages.find(id: id, subAccountID: account.id) else {
            throw APIProblem.notFound("No message \(id.apiString).")
        }
        let events = try await messages.events(messageID: id, subAccountID: account.id)
        return .ok(.init(body: .json(Self.schema(message, for: principal, history: events))))
    }

    package func getMessageBatch(_ input: Operations.GetMessageBatch.Input) async throws
        -> Operations.GetMessageBatch.Output
    {
        let (_, account) = try await findSubAccount(input.path.subAccountId)
        let id = try pathID(input.path.batchId, "batch")
        guard let summary = try await messages.batch(id: id, subAccountID: account.id) else {
            throw APIProblem.notFound("No batch \(id.apiString).")
        }
        let batch = summary.batch
        return .ok(
            .init(
                body: .json(
                    .init(
                        batchId: batch.id.apiString, subAccountId: batch.subAccountID.apiString, sender: batch.sender,
                        text: batch.text,
                        encoding: Components.Schemas.MessageEncoding(rawValue: batch.encoding.rawValue)!,
                        parts: Int32(batch.parts), long: batch.long,
                        reference: batch.reference, group: batch.groupName, scheduleAt: batch.scheduleAt,
                        recipientCount: Int32(batch.recipientCount),
                        messageCount: Int32(batch.messageCount), retailTotal: Money(batch.retailTotal).description,
                        acceptedAt: batch.acceptedAt,
                        createdBy: batch.createdBy,
                        statuses: summary.statuses.compactMap { row in
                            Components.Schemas.MessageStatus(rawValue: row.status.rawValue).map {
                                .init(status: $0, count: Int32(row.count), retail: Money(row.retail).description)
                            }
                        }))))
    }

    // MARK: - Cancelling

    package func cancelMessage(_ input: Operations.CancelMessage.Input) async throws -> Operations.CancelMessage.Output
    {
        let id = try pathID(input.path.messageId, "message")
        let (result, replayed) = try await cancel(
            input.path.subAccountId, .message(id), key: input.headers.idempotencyKey,
            operation: "cancelMessage:\(id.apiString)")
        return .ok(.init(headers: .init(idempotentReplayed: replayed), body: .json(Self.schema(result))))
    }

    package func cancelMessageBatch(_ input: Operations.CancelMessageBatch.Input) async throws
        -> Operations.CancelMessageBatch.Output
    {
        let id = try pathID(input.path.batchId, "batch")
        let (result, replayed) = try await cancel(
            input.path.subAccountId, .batch(id), key: input.headers.idempotencyKey,
            operation: "cancelMessageBatch:\(id.apiString)")
        return .ok(.init(headers: .init(idempotentReplayed: replayed), body: .json(Self.schema(result))))
    }

    package func cancelScheduledMessages(_ input: Operations.CancelScheduledMessages.Input) async throws
        -> Operations.CancelScheduledMessages.Output
    {
        let (result, replayed) = try await cancel(
            input.path.subAccountId, .allScheduled, key: input.headers.idempotencyKey,
            operation: "cancelScheduledMessages")
        return .ok(.init(headers: .init(idempotentReplayed: replayed), body: .json(Self.schema(result))))
    }

    /// Cancels under an idempotency key: 404 for an unknown message or batch, 409 when nothing selected could be
    /// cancelled (a single message, or a batch with nothing left to cancel).
    private func cancel(
        _ subAccountPathID: String, _ selection: CancelSelection, key: String, operation: String
    ) async throws -> (CancelResult, Bool) {
        let (principal, account) = try await findSubAccount(subAccountPathID)
        try Access.ensure(principal, isOneOf: .reseller, .subAccount)
        switch selection {
        case .message(let id):
            guard try await messages.find(id: id, subAccountID: account.id) != nil else {
                throw APIProblem.notFound("No message \(id.apiString).")
            }
        case .batch(let id):
            guard try await messages.batch(id: id, subAccountID: account.id) != nil else {
                throw APIProblem.notFound("No batch \(id.apiString).")
            }
        case .allScheduled, .scheduledTo, .scheduledInOutbox:
            break
        }
        let request = try Idempotency.request(
            principal: principal, key: key, operation: "\(operation):\(account.id.apiString)", body: [String: String]())
        let actor = AuditActor(principal)
        return try await idempotency.run(request, status: 200) { connection in
            let result = try await MessageRepository.cancel(
                subAccountID: account.id, resellerID: account.resellerID, selection: selection, by: actor,
                on: connection)
            if result.cancelled.isEmpty, !result.notCancelled.isEmpty {
                let first = result.notCancelled[0]
                throw APIProblem(
                    .conflict, code: "not_cancellable",
                    detail:
                        "Message \(first.id.apiString) cannot be cancelled: \(first.reason) (status \(first.status.rawValue))."
                )
            }
            return result
        }
    }

    // MARK: - Schemas

    package static func schema(_ batch: AcceptedBatch) -> Components.Schemas.SendAccepted {
        .init(
            batchId: batch.batchID.apiString, outboxId: batch.outboxID, subAccountId: batch.subAccountID.apiString,
            acceptedAt: batch.acceptedAt,
            scheduleAt: batch.scheduleAt, status: Components.Schemas.MessageStatus(rawValue: batch.status.rawValue)!,
            sender: batch.sender,
            encoding: Components.Schemas.MessageEncoding(rawValue: batch.encoding.rawValue)!, parts: Int32(batch.parts),
            reference: batch.reference, messageCount: Int32(batch.messages.count),
            retailTotal: batch.retailTotal.description,
            messages: batch.messages.map {
                .init(
                    id: $0.id.apiString, gatewayId: $0.gatewayID, index: Int32($0.index), number: $0.number,
                    country: $0.country, parts: Int32($0.parts),
                    price: $0.price.description)
            },
            refused: batch.refused.map {
                .init(index: Int32($0.index), input: $0.input, gatewayCode: Int32($0.code), error: $0.message)
            })
    }

    /// A message as `principal` may see it: wholesale for resellers and the admin, upstream cost for the admin.
    package static func schema(_ message: MessageRecord, for principal: Principal, history: [MessageEventRecord]?)
        -> Components.Schemas.Message
    {
        let seesWholesale = principal.role != .subAccount
        let seesCost = principal.role == .admin
        let status = Components.Schemas.MessageStatus(rawValue: message.status.rawValue)!
        return .init(
            id: message.id.apiString, gatewayId: message.gatewayID, batchId: message.batchID.apiString,
            subAccountId: message.subAccountID.apiString,
            recipient: message.recipient, country: message.country, sender: message.sender, text: message.text,
            encoding: Components.Schemas.MessageEncoding(rawValue: message.encoding.rawValue)!,
            parts: Int32(message.parts),
            long: message.long, reference: message.reference, group: message.groupName, status: status,
            gatewayCode: message.statusCode.map { Int32($0) }, statusDetail: message.statusDetail,
            scheduleAt: message.scheduleAt,
            upstreamId: message.upstreamID, acceptedAt: message.acceptedAt, statusAt: message.statusAt,
            submittedAt: message.submittedAt,
            price: .init(
                retail: Money(message.retailPrice).description, retailVersionId: message.retailVersionID.apiString,
                retailReservationId: message.retailReservationID?.apiString,
                wholesale: seesWholesale ? Money(message.wholesalePrice).description : nil,
                wholesaleVersionId: seesWholesale ? message.wholesaleVersionID.apiString : nil,
                wholesaleReservationId: seesWholesale ? message.wholesaleReservationID?.apiString : nil,
                upstreamCost: seesCost ? Money(message.upstreamCost).description : nil,
                upstreamCostVersionId: seesCost ? message.upstreamCostVersionID.apiString : nil),
            history: history.map { events in
                // Acceptance is the message row itself; what follows is recorded as it happens.
                var entries: [Components.Schemas.MessageEvent] = [.init(status: "accepted", at: message.acceptedAt)]
                entries.append(
                    .init(
                        status: message.scheduleAt.map { $0 > message.acceptedAt } == true ? "scheduled" : "queued",
                        at: message.acceptedAt))
                entries += events.map {
                    .init(
                        status: $0.status, gatewayCode: $0.code.map { Int32($0) }, detail: $0.detail, at: $0.occurredAt)
                }
                return entries
            })
    }

    package static func schema(_ result: CancelResult) -> Components.Schemas.CancelResult {
        .init(
            cancelled: result.cancelled.map(\.apiString), refunded: result.refunded.description,
            notCancelled: result.notCancelled.map {
                .init(
                    id: $0.id.apiString, status: Components.Schemas.MessageStatus(rawValue: $0.status.rawValue)!,
                    reason: $0.reason)
            })
    }
}

/// Limits of a send request that are not the upstream's message rules.
package enum SendRequestLimits {
    /// The 1601 `referentie`: at most 75 characters.
    package static let referenceLength = 75
}
