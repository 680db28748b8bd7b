import SMSCore
import Testing

/// The cost of one scalar in `encoding`, computed independently of `SegmentCounter`.
private func cost(_ scalar: Unicode.Scalar, _ encoding: MessageEncoding) -> Int {
    encoding == .gsm7 ? (GSMAlphabet.septets(for: scalar) ?? .max) : scalar.utf16.count
}

private func cost(_ text: String, _ encoding: MessageEncoding) -> Int {
    text.unicodeScalars.reduce(0) { $0 + cost($1, encoding) }
}

private let gsmExtensionCharacters: [Character] = ["€", "[", "]", "{", "}", "^", "~", "\\", "|", "\u{0C}"]

@Suite struct SegmentCounterBoundaryTests {
    let counter = SegmentCounter()

    @Test(
        arguments: [
            (1, 1, nil, nil), (160, 1, nil, nil), (161, 2, .messageTooLongForSinglePart, nil),
            (306, 2, .messageTooLongForSinglePart, nil), (307, 3, .messageTooLongForSinglePart, nil),
            (459, 3, .messageTooLongForSinglePart, nil), (460, 4, .messageTooLongForSinglePart, .messageTooLong),
        ] as [(Int, Int, GatewayErrorCode?, GatewayErrorCode?)])
    func gsm7(length: Int, parts: Int, withoutLong: GatewayErrorCode?, withLong: GatewayErrorCode?) {
        let text = String(repeating: "a", count: length)
        let segmentation = counter.segment(text)
        #expect(segmentation.encoding == .gsm7)
        #expect(segmentation.length == length)
        #expect(segmentation.partCount == parts)
        let expectedSizes =
            parts == 1 ? [length] : Array(repeating: 153, count: parts - 1) + [length - 153 * (parts - 1)]
        #expect(segmentation.parts.map(\.count) == expectedSizes)
        #expect(segmentation.parts.joined() == text)
        #expect(counter.lengthError(for: text, longAllowed: false) == withoutLong)
        #expect(counter.lengthError(for: text, longAllowed: true) == withLong)
    }

    @Test(
        arguments: [
            (1, 1, nil, nil), (70, 1, nil, nil), (71, 2, .messageTooLongForSinglePart, nil),
            (134, 2, .messageTooLongForSinglePart, nil), (135, 3, .messageTooLongForSinglePart, nil),
            (201, 3, .messageTooLongForSinglePart, nil), (202, 4, .messageTooLongForSinglePart, .messageTooLong),
        ] as [(Int, Int, GatewayErrorCode?, GatewayErrorCode?)])
    func ucs2(length: Int, parts: Int, withoutLong: GatewayErrorCode?, withLong: GatewayErrorCode?) {
        let text = String(repeating: "Ж", count: length)
        let segmentation = counter.segment(text)
        #expect(segmentation.encoding == .ucs2)
        #expect(segmentation.length == length)
        #expect(segmentation.partCount == parts)
        let expectedSizes = parts == 1 ? [length] : Array(repeating: 67, count: parts - 1) + [length - 67 * (parts - 1)]
        #expect(segmentation.parts.map(\.utf16.count) == expectedSizes)
        #expect(segmentation.parts.joined() == text)
        #expect(counter.lengthError(for: text, longAllowed: false) == withoutLong)
        #expect(counter.lengthError(for: text, longAllowed: true) == withLong)
    }

    @Test func emptyTextIsErrorOneHundredAndTwo() {
        #expect(counter.lengthError(for: "", longAllowed: true) == .messageEmpty)
        #expect(counter.lengthError(for: "", longAllowed: false) == .messageEmpty)
        let segmentation = counter.segment("")
        #expect(segmentation.encoding == .gsm7)
        #expect(segmentation.length == 0)
        #expect(segmentation.parts == [""])
        #expect(counter.lengthError(for: " ", longAllowed: false) == nil)
    }
}

@Suite struct GSMExtensionTableTests {
    let counter = SegmentCounter()

    @Test(arguments: gsmExtensionCharacters)
    func costsTwoSeptets(character: Character) throws {
        let scalar = try #require(character.unicodeScalars.first)
        #expect(character.unicodeScalars.count == 1)
        #expect(GSMAlphabet.septets(for: scalar) == 2)
        let alone = counter.segment(String(character))
        #expect(alone.encoding == .gsm7)
        #expect(alone.length == 2)
        // 158 + 2 septets fill one part exactly; one more plain character makes it two.
        #expect(counter.segment(String(repeating: "a", count: 158) + String(character)).partCount == 1)
        let over = counter.segment(String(repeating: "a", count: 159) + String(character))
        #expect(over.length == 161)
        #expect(over.partCount == 2)
    }

    @Test(arguments: gsmExtensionCharacters)
    func escapePairMovesWholeToTheNextPart(character: Character) {
        // 152 septets + a 2-septet pair would be 154 > 153: the pair starts part two instead of being cut.
        let text = String(repeating: "a", count: 152) + String(character) + String(repeating: "b", count: 10)
        let segmentation = counter.segment(text)
        #expect(segmentation.encoding == .gsm7)
        #expect(segmentation.length == 164)
        let expected = [String(repeating: "a", count: 152), String(character) + String(repeating: "b", count: 10)]
        #expect(segmentation.parts == expected)
        #expect(segmentation.parts.joined() == text)
    }

    @Test func escapePairThatFitsExactlyStaysInItsPart() {
        let text = String(repeating: "a", count: 151) + "€" + String(repeating: "b", count: 10)
        let segmentation = counter.segment(text)
        #expect(segmentation.parts == [String(repeating: "a", count: 151) + "€", String(repeating: "b", count: 10)])
    }

    @Test func escapePairAtTheSecondBoundaryToo() {
        let text = String(repeating: "a", count: 153) + String(repeating: "c", count: 152) + "{" + "z"
        let segmentation = counter.segment(text)
        #expect(segmentation.length == 153 + 152 + 2 + 1)
        #expect(segmentation.parts == [String(repeating: "a", count: 153), String(repeating: "c", count: 152), "{z"])
    }

    @Test func aMessageOfPairsOnlyNeverSplitsAPair() {
        #expect(counter.segment(String(repeating: "€", count: 80)).partCount == 1)
        let two = counter.segment(String(repeating: "€", count: 81))
        #expect(two.length == 162)
        // 153 is odd: each part holds 76 pairs (152 septets) and leaves one septet free.
        #expect(two.parts.map(\.count) == [76, 5])
        let limit = counter.segment(String(repeating: "€", count: 229))
        #expect(limit.length == 458)
        #expect(limit.parts.map(\.count) == [76, 76, 76, 1])
        #expect(counter.lengthError(for: String(repeating: "€", count: 228), longAllowed: true) == nil)
        #expect(counter.lengthError(for: String(repeating: "€", count: 229), longAllowed: true) == .messageTooLong)
    }
}

@Suite struct UCS2SurrogateTests {
    let counter = SegmentCounter()

    @Test func emojiCountTwoUnitsAndFillASinglePart() {
        #expect(counter.segment("😀").length == 2)
        #expect(counter.segment(String(repeating: "Ж", count: 68) + "😀").partCount == 1)
        let over = counter.segment(String(repeating: "Ж", count: 69) + "😀")
        #expect(over.length == 71)
        #expect(over.partCount == 2)
        #expect(counter.segment(String(repeating: "😀", count: 35)).partCount == 1)
        let emojiOnly = counter.segment(String(repeating: "😀", count: 36))
        #expect(emojiOnly.length == 72)
        #expect(emojiOnly.parts.map(\.utf16.count) == [66, 6])
    }

    @Test func surrogatePairMovesWholeToTheNextPart() {
        let text = String(repeating: "Ж", count: 66) + "😀" + String(repeating: "Ж", count: 10)
        let segmentation = counter.segment(text)
        #expect(segmentation.encoding == .ucs2)
        #expect(segmentation.length == 78)
        #expect(segmentation.parts == [String(repeating: "Ж", count: 66), "😀" + String(repeating: "Ж", count: 10)])
        #expect(segmentation.parts.joined() == text)
    }

    @Test func surrogatePairThatFitsExactlyStaysInItsPart() {
        let text = String(repeating: "Ж", count: 65) + "😀" + String(repeating: "Ж", count: 10)
        let segmentation = counter.segment(text)
        #expect(segmentation.parts.map(\.utf16.count) == [67, 10])
        #expect(segmentation.parts[0].hasSuffix("😀"))
    }

    @Test func zwjSequenceCountsEveryUnit() {
        let family = "👨\u{200D}👩\u{200D}👧"  // man, ZWJ, woman, ZWJ, girl: 2 + 1 + 2 + 1 + 2 units
        #expect(family.count == 1)
        let alone = counter.segment(family)
        #expect(alone.encoding == .ucs2)
        #expect(alone.length == 8)
        #expect(counter.segment(String(repeating: "Ж", count: 62) + family).partCount == 1)
        // Split between scalars, never inside one: Ж×63 + 👨 + ZWJ = 66 units, and 👩 (2) would make 68.
        let split = counter.segment(String(repeating: "Ж", count: 63) + family)
        #expect(split.length == 71)
        #expect(split.parts == [String(repeating: "Ж", count: 63) + "👨\u{200D}", "👩\u{200D}👧"])
        #expect(counter.segment("🇳🇱").length == 4)
    }
}

@Suite struct GSMAlphabetTests {
    let counter = SegmentCounter()

    @Test func tablesHaveTheSizesOfGSM0338() {
        #expect(GSMAlphabet.basic.count == 127)  // 128 code points minus the escape
        #expect(GSMAlphabet.extended.count == 10)
        #expect(GSMAlphabet.basic.isDisjoint(with: GSMAlphabet.extended))
        #expect(Set(gsmExtensionCharacters.flatMap(\.unicodeScalars)) == GSMAlphabet.extended)
    }

    @Test(
        arguments: [
            ("Caf\u{E9}", MessageEncoding.gsm7, 4),  // precomposed é is in the alphabet
            ("Cafe\u{301}", .ucs2, 5),  // e + COMBINING ACUTE ACCENT: U+0301 is not, and nothing is normalised
            ("\u{C7}a va", .gsm7, 5),  // capital Ç is in the GSM 03.38 table
            ("\u{E7}a va", .ucs2, 5),  // small ç is not
            ("\u{E8}\u{F9}\u{EC}\u{F2}\u{E0}", .gsm7, 5), ("\u{E1}", .ucs2, 1), ("\u{EB}", .ucs2, 1),
            ("ÄÖÑÜäöñüÅåÆæØøßÉ", .gsm7, 16), ("ΔΦΓΛΩΠΨΣΘΞ", .gsm7, 10), ("£$¥¤§¿¡@_", .gsm7, 9),
            ("α", .ucs2, 1), ("Ё", .ucs2, 1), ("`", .ucs2, 1), ("\t", .ucs2, 1), ("°", .ucs2, 1),
            ("\u{201C}quoted\u{201D}", .ucs2, 8), ("en\u{2013}dash", .ucs2, 7), ("a\u{A0}b", .ucs2, 3),
            ("Dag Jose, café à 5 € {ok}", .gsm7, 28), ("line\r\nbreak", .gsm7, 11), ("ĳs", .ucs2, 2),
        ] as [(String, MessageEncoding, Int)])
    func alphabetDecidesTheEncoding(text: String, encoding: MessageEncoding, length: Int) {
        let segmentation = counter.segment(text)
        #expect(segmentation.encoding == encoding)
        #expect(segmentation.length == length)
        #expect(GSMAlphabet.canEncode(text) == (encoding == .gsm7))
    }

    @Test func oneForeignCharacterTurnsALongMessageIntoUCS2() {
        let gsm = String(repeating: "a", count: 150)
        #expect(counter.segment(gsm).partCount == 1)
        let mixed = counter.segment(gsm + "ç")
        #expect(mixed.encoding == .ucs2)
        #expect(mixed.length == 151)
        #expect(mixed.partCount == 3)
    }
}

@Suite struct SegmentationPolicyTests {
    let policy = SegmentationPolicy(
        gsmSinglePart: 100, gsmConcatenatedPart: 90, ucs2SinglePart: 40, ucs2ConcatenatedPart: 35, maximumParts: 5
    )

    @Test func standardIsTheGatewaysLimits() {
        #expect(
            SegmentationPolicy.standard
                == SegmentationPolicy(
                    gsmSinglePart: 160, gsmConcatenatedPart: 153, ucs2SinglePart: 70, ucs2ConcatenatedPart: 67,
                    maximumParts: 3
                ))
        #expect(SegmentCounter().policy == .standard)
    }

    @Test(
        arguments: [
            ("a", 100, 1, nil), ("a", 101, 2, nil), ("a", 180, 2, nil), ("a", 181, 3, nil), ("a", 450, 5, nil),
            ("a", 451, 6, .messageTooLong), ("Ж", 40, 1, nil), ("Ж", 41, 2, nil), ("Ж", 70, 2, nil), ("Ж", 71, 3, nil),
            ("Ж", 175, 5, nil), ("Ж", 176, 6, .messageTooLong),
        ] as [(String, Int, Int, GatewayErrorCode?)])
    func partSizesAndMaximumAreRespected(character: String, length: Int, parts: Int, withLong: GatewayErrorCode?) {
        let counter = SegmentCounter(policy: policy)
        let text = String(repeating: character, count: length)
        let segmentation = counter.segment(text)
        #expect(segmentation.partCount == parts)
        let partSize = character == "a" ? 90 : 35
        if parts > 1 { #expect(segmentation.parts.dropLast().allSatisfy { $0.count == partSize }) }
        #expect(counter.lengthError(for: text, longAllowed: true) == withLong)
        #expect(counter.lengthError(for: text, longAllowed: false) == (parts > 1 ? .messageTooLongForSinglePart : nil))
    }

    @Test func escapePairsAndSurrogatesRespectCustomPartSizes() {
        let counter = SegmentCounter(
            policy: SegmentationPolicy(
                gsmSinglePart: 10, gsmConcatenatedPart: 8, ucs2SinglePart: 6, ucs2ConcatenatedPart: 5)
        )
        #expect(counter.segment("aaaaaaa€bb").parts == ["aaaaaaa", "€bb"])
        #expect(counter.segment("ЖЖЖЖ😀ЖЖ").parts == ["ЖЖЖЖ", "😀ЖЖ"])
    }

    @Test func singlePartOnlyConnection() {
        let counter = SegmentCounter(policy: SegmentationPolicy(maximumParts: 1))
        let text = String(repeating: "a", count: 161)
        #expect(counter.lengthError(for: String(repeating: "a", count: 160), longAllowed: true) == nil)
        #expect(counter.lengthError(for: text, longAllowed: true) == .messageTooLong)
        #expect(counter.lengthError(for: text, longAllowed: false) == .messageTooLongForSinglePart)
    }
}

/// Random texts mixing every kind of character: the parts must give back the text, respect the part size, never cut
/// a scalar, and be filled greedily (a part ends only when the next scalar would not fit).
@Suite struct SegmentationPropertyTests {
    static let pool: [String] = [
        "a", "Z", "0", " ", "\n", "é", "Ç", "Δ", "€", "{", "\\", "\u{0C}",  // GSM-7, two of them two septets
        "ç", "Ж", "ë", "\u{301}", "\u{200D}", "—",  // BMP outside GSM-7
        "😀", "👩", "🇳", "𝄞",  // outside the BMP: surrogate pairs
    ]

    @Test(arguments: [
        SegmentationPolicy.standard,
        SegmentationPolicy(
            gsmSinglePart: 20, gsmConcatenatedPart: 15, ucs2SinglePart: 9, ucs2ConcatenatedPart: 7, maximumParts: 9
        ),
    ])
    func partsAreAFaithfulGreedySplit(policy: SegmentationPolicy) {
        let counter = SegmentCounter(policy: policy)
        var random = SeededRandom(seed: 0x5EED_0003)
        var seen: Set<MessageEncoding> = []
        var multiPart = 0
        for round in 0..<3_000 {
            // Half the texts stay inside GSM-7 so both encodings are exercised.
            let pool = round.isMultiple(of: 2) ? Array(Self.pool.prefix(12)) : Self.pool
            let length = Int.random(in: 0...260, using: &random)
            let text = (0..<length).map { _ in pool.randomElement(using: &random)! }.joined()
            let segmentation = counter.segment(text)
            let encoding = segmentation.encoding
            seen.insert(encoding)
            #expect(encoding == (GSMAlphabet.canEncode(text) ? .gsm7 : .ucs2))
            #expect(segmentation.length == cost(text, encoding))
            #expect(Array(segmentation.parts.joined().unicodeScalars) == Array(text.unicodeScalars))
            let single = encoding == .gsm7 ? policy.gsmSinglePart : policy.ucs2SinglePart
            let partSize = encoding == .gsm7 ? policy.gsmConcatenatedPart : policy.ucs2ConcatenatedPart
            guard segmentation.length > single else {
                #expect(segmentation.partCount == 1, "\(text.debugDescription)")
                continue
            }
            multiPart += 1
            #expect(segmentation.parts.allSatisfy { !$0.isEmpty && cost($0, encoding) <= partSize })
            for (part, next) in zip(segmentation.parts, segmentation.parts.dropFirst()) {
                #expect(cost(part, encoding) + cost(next.unicodeScalars.first!, encoding) > partSize)
            }
            let error = counter.lengthError(for: text, longAllowed: true)
            #expect(error == (segmentation.partCount > policy.maximumParts ? .messageTooLong : nil))
        }
        #expect(seen == [.gsm7, .ucs2])
        #expect(multiPart > 500)
    }
}
