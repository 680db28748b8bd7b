import Foundation
import HTTPTypes
import Ledger
import Testing

/// Text limits are checked as PostgreSQL counts them, and text that cannot be stored is refused: a 422 naming the
/// field, never a CHECK violation (500).
@Suite(.timeLimit(.minutes(3))) struct TextLengthValidationTests {
    /// Lengths are checked as PostgreSQL counts them (Unicode scalars), so text that is short in
    /// grapheme clusters but long in scalars is a 422 naming the field, not a CHECK violation (500).
    @Test func lengthsAreCountedAsTheDatabaseCountsThemAndBadEmailsAre422() async throws {
        try await TenancyHarness.run { api in
            let tenant = try await api.onboard("Lengths")
            let decomposed = String(repeating: "e\u{301}", count: 150)  // 150 characters, 300 scalars
            #expect(decomposed.count == 150 && decomposed.unicodeScalars.count == 300)
            let before = try await api.auditCount()
            var reply = try await api.call(.post, "/resellers", key: api.adminKey, body: ["name": decomposed])
            #expect(reply.status == .unprocessableContent, "\(reply.json)")
            #expect((reply["errors"] as? [[String: Any]])?.first?["field"] as? String == "/name")
            reply = try await api.call(
                .patch, "/resellers/\(tenant.resellerID)", key: api.adminKey, body: ["name": decomposed])
            #expect(reply.status == .unprocessableContent, "\(reply.json)")
            reply = try await api.call(
                .post, "/api-keys", key: tenant.resellerKey, body: ["name": String(repeating: "e\u{301}", count: 60)])
            #expect(reply.status == .unprocessableContent, "\(reply.json)")
            #expect((reply["errors"] as? [[String: Any]])?.first?["field"] as? String == "/name")
            reply = try await api.call(
                .post, "/sub-accounts", key: tenant.resellerKey,
                body: [
                    "name": decomposed, "username": "lengths-\(UUID().uuidString.prefix(6))", "password": "password1",
                ])
            #expect(reply.status == .unprocessableContent, "\(reply.json)")
            reply = try await api.call(
                .post, "/resellers", key: api.adminKey,
                body: ["name": "x", "contactEmail": "a@b.c" + String(repeating: "\u{301}", count: 400)])
            #expect(reply.status == .unprocessableContent, "\(reply.json)")
            #expect((reply["errors"] as? [[String: Any]])?.first?["field"] as? String == "/contactEmail")
            // A NUL would be cut off silently by the driver (text parameters are C strings).
            reply = try await api.call(
                .post, "/resellers", key: api.adminKey, body: ["name": "x", "contactEmail": "a@b.c\u{0}evil"])
            #expect(reply.status == .unprocessableContent, "\(reply.json)")
            #expect(try await api.auditCount() == before)
            // The limits themselves still hold: 100 scalars is a valid key name.
            reply = try await api.call(
                .post, "/api-keys", key: tenant.resellerKey, body: ["name": String(repeating: "e\u{301}", count: 50)])
            #expect(reply.status == .created, "\(reply.json)")
        }
    }
}
