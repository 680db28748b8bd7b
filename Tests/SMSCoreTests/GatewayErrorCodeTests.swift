import SMSCore
import Testing

@Suite struct GatewayErrorCodeTests {
    @Test func everyDocumentedCodeExists() {
        let expected = Array(100...126) + [150]
        #expect(GatewayErrorCode.allCases.map(\.rawValue) == expected)
        for code in GatewayErrorCode.allCases { #expect(!code.meaning.isEmpty) }
    }

    @Test func categoriesFollowTheDispatchTable() {
        let transient: Set<Int> = [120, 150]
        let account: Set<Int> = [100, 101, 104, 108, 115, 116]
        for code in GatewayErrorCode.allCases {
            let expected: GatewayErrorCode.Category =
                transient.contains(code.rawValue) ? .transient : account.contains(code.rawValue) ? .account : .message
            #expect(code.category == expected, "\(code.rawValue)")
        }
    }

    @Test func descriptionNamesTheNumber() {
        #expect(GatewayErrorCode.senderTooLong.description.hasPrefix("ERROR 111"))
    }
}
