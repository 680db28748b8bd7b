import Foundation
import HTTPTypes
import OpenAPIRuntime

/// What the generated decoder does not check of a JSON request body against `openapi.yaml`, checked before it runs:
///
/// - **No body:** an operation whose body is optional (`POST …/unblock`) may be called with none at all (it gets `{}`);
///   one whose body is required is refused with 400 without one (an empty PATCH was taken for `{}`).
/// - **`null`:** no schema of the API is nullable, but the decoder reads `null` as an absent optional property; so a
///   `null` anywhere in a JSON body is refused with 400, naming where (a test keeps the spec free of nullable schemas).
/// - **`maxItems`:** the decoder does not count; arrays with a `maxItems` that no handler checks on its own are
///   refused with 400 past it (a test keeps ``arrayLimits`` and ``arrayLimitsCheckedByHandlers`` equal to the spec).
///
/// Runs after `RequireKeyMiddleware` (an anonymous caller learns nothing about bodies) and after `BodyLimitMiddleware`
/// has bounded the body it collects.
package struct RequestSchemaMiddleware: ServerMiddleware {
    /// The operations whose request body is optional (`requestBody.required: false`).
    package static let optionalBodyOperations: Set<String> = [
        "unblockReseller", "closeReseller", "unblockSubAccount", "closeSubAccount", "approveSenderName",
        "rotateWebhookSecret",
    ]

    /// The operations whose request body is required (`requestBody.required: true`).
    package static let requiredBodyOperations: Set<String> = [
        "addContactGroupMembers", "adjustResellerWallet", "assignResellerUpstreamConnection", "assignRetailPriceList",
        "assignWholesalePriceList", "blockReseller", "blockSubAccount", "createApiKey", "createContact",
        "createContactGroup", "createPriceList", "createPriceListVersion", "createReseller", "createResellerApiKey",
        "createPlatformWebhook", "createResellerWebhook", "createSenderNameRule", "createSubAccount",
        "createSubAccountApiKey", "createSubAccountWebhook", "createUpstreamConnection", "importContacts",
        "issueCreditNote", "pauseUpstreamConnection", "previewSend", "putIssuerProfile", "putResellerBillingProfile",
        "putSubAccountBillingProfile", "recordUpstreamPurchase", "resetUpstreamReconciliationBaseline", "runInvoices",
        "rejectSenderName",
        "removeContactGroupMembers", "renameContactGroup",
        "replaceAccountCodes", "replayWebhookEvents", "requestSenderName", "revokeSenderName", "sendMessages",
        "setCreditLimit", "setDefaultRetailPriceList", "setDefaultUpstreamConnection", "setLowBalanceThreshold",
        "setResellerRefundPolicy", "setSubAccountRefundPolicy", "setWebhookSettings", "topUpReseller",
        "transferSubAccountCredits", "updateContact", "updatePriceDefaults", "updatePriceList", "updateReseller",
        "updateSubAccount", "updateUpstreamConnection", "updateWebhook",
    ]

    /// Per operation, top-level array properties of the body and their `maxItems`, checked here.
    package static let arrayLimits: [String: [String: Int]] = [
        "setResellerRefundPolicy": ["chargedStates": 4],
        "setSubAccountRefundPolicy": ["chargedStates": 4],
        "issueCreditNote": ["lines": 1000],
    ]

    /// Arrays with a `maxItems` their handlers check themselves, with a field error in their own words (422).
    package static let arrayLimitsCheckedByHandlers: [String: [String: Int]] = [
        "createUpstreamConnection": ["singlePartCountries": 1000],
        "updateUpstreamConnection": ["singlePartCountries": 1000],
        "replaceAccountCodes": ["items": 8],
        "previewSend": ["recipients": 10_000],
        "sendMessages": ["recipients": 10_000],
        "putIssuerProfile": ["address": 6],
        "putResellerBillingProfile": ["address": 6],
        "putSubAccountBillingProfile": ["address": 6],
    ]

    package init() {}

    package func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard [.post, .put, .patch].contains(request.method) else { return try await next(request, body, metadata) }
        let contentType = request.headerFields[.contentType]?.lowercased()
        // A body the runtime reads as JSON: declared so, or (the runtime's default) not declared at all.
        guard contentType.map({ $0.hasPrefix("application/json") || $0.contains("+json") }) ?? true else {
            return try await next(request, body, metadata)
        }
        // Bounded by BodyLimitMiddleware, which throws past the route's limit.
        let bytes = if let body { try await Data(collecting: body, upTo: .max) } else { Data() }
        var request = request
        if bytes.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
            if Self.requiredBodyOperations.contains(operationID) {
                throw APIProblem(
                    .badRequest, code: "invalid_body", detail: "The request body is required: a JSON document.")
            }
            guard Self.optionalBodyOperations.contains(operationID), bytes.isEmpty, contentType == nil else {
                // Declared JSON but empty: not JSON; the decoder says so.
                return try await next(request, HTTPBody(bytes), metadata)
            }
            request.headerFields[.contentType] = "application/json"
            request.headerFields[.contentLength] = "2"
            return try await next(request, HTTPBody("{}"), metadata)
        }
        // Not JSON at all: the decoder says so, in its words.
        if let document = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) {
            if let pointer = Self.firstNull(in: document, at: "") {
                throw APIProblem(
                    .badRequest, code: "invalid_body",
                    detail:
                        "The request body does not match the schema: \(pointer.isEmpty ? "/" : pointer) is null; no value of this API may be null (leave the property out instead)."
                )
            }
            if let limits = Self.arrayLimits[operationID], let object = document as? [String: Any] {
                for (property, maximum) in limits.sorted(by: { $0.key < $1.key }) {
                    if let array = object[property] as? [Any], array.count > maximum {
                        throw APIProblem(
                            .badRequest, code: "invalid_body",
                            detail:
                                "The request body does not match the schema: /\(property) has \(array.count) items; at most \(maximum)."
                        )
                    }
                }
            }
        }
        return try await next(request, HTTPBody(bytes), metadata)
    }

    /// The JSON pointer of the first `null` in a parsed document (objects' keys in sorted order), if any.
    static func firstNull(in value: Any, at pointer: String) -> String? {
        switch value {
        case is NSNull:
            return pointer
        case let object as [String: Any]:
            for key in object.keys.sorted() {
                let escaped = key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
                if let found = firstNull(in: object[key]!, at: pointer + "/" + escaped) { return found }
            }
            return nil
        case let array as [Any]:
            for (index, element) in array.enumerated() {
                if let found = firstNull(in: element, at: pointer + "/\(index)") { return found }
            }
            return nil
        default:
            return nil
        }
    }
}
