import SMSCore
import Testing

@Suite struct SegmentCounterTests {
    let counter = SegmentCounter()

    @Test(arguments: [(160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
    func gsmPartBoundaries(length: Int, parts: Int) {
        let segmentation = counter.segment(String(repeating: "a", count: length))
        #expect(segmentation.encoding == .gsm7)
        #expect(segmentation.length == length)
        #expect(segmentation.partCount == parts)
        if parts > 1 { #expect(segmentation.parts.dropLast().allSatisfy { $0.count == 153 }) }
        #expect(segmentation.parts.joined() == String(repeating: "a", count: length))
    }

    @Test(arguments: [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
    func ucs2PartBoundaries(length: Int, parts: Int) {
        let segmentation = counter.segment(String(repeating: "Ж", count: length))
        #expect(segmentation.encoding == .ucs2)
        #expect(segmentation.length == length)
        #expect(segmentation.partCount == parts)
        if parts > 1 { #expect(segmentation.parts.dropLast().allSatisfy { $0.utf16.count == 67 }) }
    }

    @Test func extensionCharactersCostTwoSeptets() {
        #expect(counter.segment(String(repeating: "€", count: 80)).partCount == 1)
        let longer = counter.segment(String(repeating: "€", count: 81))
        #expect(longer.length == 162)
        #expect(longer.partCount == 2)
        for character in "€[]{}^~\\|\u{0C}" {
            #expect(counter.segment(String(character)).length == 2, "\(character)")
        }
    }

    @Test func escapePairIsNeverSplitAcrossParts() {
        let text = String(repeating: "a", count: 152) + "€" + String(repeating: "b", count: 10)
        let segmentation = counter.segment(text)
        #expect(segmentation.length == 164)
        #expect(segmentation.parts.count == 2)
        #expect(segmentation.parts[0] == String(repeating: "a", count: 152))
        #expect(segmentation.parts[1] == "€" + String(repeating: "b", count: 10))
    }

    @Test func surrogatePairIsNeverSplitAcrossParts() {
        let text = String(repeating: "Ж", count: 66) + "😀" + String(repeating: "Ж", count: 10)
        let segmentation = counter.segment(text)
        #expect(segmentation.encoding == .ucs2)
        #expect(segmentation.length == 78)
        #expect(segmentation.parts[0] == String(repeating: "Ж", count: 66))
        #expect(segmentation.parts[1].hasPrefix("😀"))
        #expect(segmentation.parts.joined() == text)
    }

    @Test func emojiCountTwoUnits() {
        #expect(counter.segment(String(repeating: "😀", count: 35)).partCount == 1)
        let two = counter.segment(String(repeating: "😀", count: 36))
        #expect(two.length == 72)
        #expect(two.parts.map(\.unicodeScalars.count) == [33, 3])
    }

    @Test func alphabetDecidesTheEncoding() {
        #expect(counter.segment("Dag Jose, café à 5 € {ok}").encoding == .gsm7)
        #expect(counter.segment("Zoë").encoding == .ucs2)  // ë is not in the GSM alphabet, é and è are
        #expect(counter.segment("ç").encoding == .ucs2)  // only capital Ç is in the GSM alphabet
        #expect(counter.segment("ĳs").encoding == .ucs2)
        #expect(counter.segment("line\r\nbreak").length == 11)  // CR and LF are two septets, not one Character
    }

    @Test func lengthErrorsFollowTheGateway() {
        let single = String(repeating: "a", count: 160)
        let twoParts = String(repeating: "a", count: 161)
        #expect(counter.lengthError(for: "", longAllowed: true) == .messageEmpty)
        #expect(counter.lengthError(for: single, longAllowed: false) == nil)
        #expect(counter.lengthError(for: twoParts, longAllowed: false) == .messageTooLongForSinglePart)
        #expect(counter.lengthError(for: twoParts, longAllowed: true) == nil)
        #expect(counter.lengthError(for: String(repeating: "a", count: 459), longAllowed: true) == nil)
        #expect(counter.lengthError(for: String(repeating: "a", count: 460), longAllowed: true) == .messageTooLong)
        #expect(counter.lengthError(for: String(repeating: "Ж", count: 202), longAllowed: true) == .messageTooLong)
    }

    @Test func policyIsAParameter() {
        let wide = SegmentCounter(policy: SegmentationPolicy(gsmSinglePart: 100, gsmConcatenatedPart: 90, maximumParts: 5))
        #expect(wide.segment(String(repeating: "a", count: 101)).partCount == 2)
        #expect(wide.lengthError(for: String(repeating: "a", count: 450), longAllowed: true) == nil)
        #expect(wide.lengthError(for: String(repeating: "a", count: 451), longAllowed: true) == .messageTooLong)
    }
}
