import ResellerCore

/// Whether a URL may receive deliveries: checked when a webhook endpoint is registered or a send names its own
/// callback URL, as the sender checks it again at every attempt (DNS answers change).
package struct WebhookURLPolicy: Sendable {
    package let endpoints: WebhookEndpointRepository

    package init(endpoints: WebhookEndpointRepository) {
        self.endpoints = endpoints
    }

    /// Refuses (a validation error on `field`) unless the URL is http(s) of 8 to 2000 characters and every address
    /// its host resolves to now is public or in a range the admin allowed.
    package func check(_ url: String, field: String) async throws {
        guard url.unicodeScalars.count <= 2000, url.count >= 8 else {
            throw DomainError.validation([.init(field: field, message: "must be 8 to 2000 characters")])
        }
        let allowed = try await endpoints.allowedRanges().compactMap(IPRange.init)
        do {
            _ = try await WebhookAddressGuard(allowed: allowed).check(url: url)
        } catch {
            throw DomainError.validation([.init(field: field, message: error.reason)])
        }
    }
}
