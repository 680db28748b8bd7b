import CompatibleGateway
import Contacts
import Foundation
import Messaging
import Pricing
import ResellerAPI
import ResellerCore
import SMSCore

/// The pricing preview: a send checked and priced by `SendPlanner`, with no side effects.
extension APIHandlers {
    package var sendPlanner: SendPlanner { SendPlanner(pool: pool) }

    package func previewSend(_ input: Operations.PreviewSend.Input) async throws -> Operations.PreviewSend.Output {
        let (_, account) = try await findSubAccount(input.path.subAccountId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let recipients = body.recipients ?? []
        if recipients.count > SendPlanner.maximumRecipients {
            validator.fail("/recipients", "must have at most \(SendPlanner.maximumRecipients) recipients")
        }
        try validator.check()
        let request = SendRequest(
            sender: body.sender, text: body.text, recipients: recipients, long: body.long ?? false,
            scheduleAt: body.scheduleAt,
            groupName: body.group?.trimmingCharacters(in: .whitespacesAndNewlines))
        guard let plan = try await sendPlanner.plan(subAccountID: account.id, request: request) else {
            throw APIProblem.notFound("No sub-account \(account.id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(plan))))
    }

    package static func schema(_ plan: SendPlan) -> Components.Schemas.SendPreview {
        let encoding = Components.Schemas.MessageEncoding(rawValue: plan.segmentation.encoding.rawValue)!
        let parts = Int32(plan.segmentation.partCount)
        // The wallet block is about the sub-account's own wallet; a reseller that cannot pay is a request-level 108.
        let insufficient = plan.retailTotal > plan.balance.spendable
        return .init(
            subAccountId: plan.subAccountID.apiString, pricedAt: plan.instant, accepted: plan.isAccepted,
            gatewayCode: plan.gatewayCode.map { Int32($0.rawValue) },
            errors: plan.checks.map {
                .init(gatewayCode: Int32($0.code.rawValue), field: $0.field, message: $0.message)
            },
            sender: plan.sender, encoding: encoding, length: Int32(plan.segmentation.length), parts: parts,
            recipients: plan.recipients.map { recipient in
                .init(
                    index: Int32(recipient.index), input: recipient.input, number: recipient.number?.digits,
                    country: recipient.country.map(schema), encoding: encoding, parts: parts,
                    pricePerPart: recipient.price?.retail.pricePerPart.description,
                    price: recipient.retailPrice?.description,
                    gatewayCode: recipient.error.map { Int32($0.rawValue) }, error: recipient.error?.meaning)
            },
            totals: .init(
                recipients: Int32(plan.recipients.count), messages: Int32(plan.messageCount),
                refused: Int32(plan.recipients.count - plan.messageCount), parts: Int32(plan.partCount),
                retailTotal: plan.retailTotal.description),
            balance: .init(
                available: plan.balance.available.description, creditLimit: plan.balance.creditLimit.description,
                spendable: plan.balance.spendable.description, availableAfter: plan.availableAfter.description,
                sufficient: !insufficient,
                gatewayCode: insufficient ? Int32(GatewayErrorCode.insufficientCredits.rawValue) : nil),
            pricing: .init(
                retailPriceListId: plan.resolution.retail?.priceListID.apiString,
                retailVersionId: plan.resolution.retail?.versionID?.apiString))
    }
}
