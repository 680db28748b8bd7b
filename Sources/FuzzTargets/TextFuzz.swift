import SMSCore

/// Phone numbers: a number that parses is 7–15 ASCII digits without a leading 0, and parses to itself again, with a
/// `+` or `00` in front, and with separators between its digits; its calling code is a prefix of it.
enum PhoneFuzz {
    static func run(_ bytes: [UInt8], _ check: inout PropertyCheck) {
        let text = String(fuzzBytes: bytes)
        guard let number = try? PhoneNumber(parsing: text) else { return }
        let digits = number.digits
        check.expect(
            (PhoneNumber.minimumDigits...PhoneNumber.maximumDigits).contains(digits.utf8.count),
            "\(digits.utf8.count) digits")
        check.expect(digits.utf8.allSatisfy { (48...57).contains($0) }, "not only ASCII digits: \(digits)")
        check.expect(digits.utf8.first != 48, "starts with 0: \(digits)")
        check.expect(digits.count == digits.utf8.count, "digits are not one byte each")
        for form in [
            digits, "+" + digits, "00" + digits, " +" + digits.map { String($0) }.joined(separator: " ") + "\n",
        ] {
            check.expect((try? PhoneNumber(parsing: form)) == number, "\(form.debugDescription) does not re-parse")
        }
        if let code = number.callingCode {
            check.expect(digits.hasPrefix(code.code), "calling code \(code.code) is not a prefix of \(digits)")
        }
    }
}

/// Sender names: an accepted sender is `+` and 1–15 digits, or 1–11 safe characters, not only spaces; the
/// comparison key is idempotent.
enum SenderFuzz {
    static func run(_ bytes: [UInt8], _ check: inout PropertyCheck) {
        let sender = String(fuzzBytes: bytes)
        let key = SenderName.comparisonKey(sender)
        check.expect(SenderName.comparisonKey(key) == key, "comparison key is not idempotent")
        guard SenderName.validationError(for: sender) == nil else { return }
        let scalars = Array(sender.unicodeScalars)
        if scalars.first == "+" {
            check.expect(
                (2...SenderName.maximumNumericLength).contains(scalars.count)
                    && scalars.dropFirst().allSatisfy { ("0"..."9").contains($0) },
                "accepted numeric sender \(sender.debugDescription)")
        } else {
            check.expect(
                (1...SenderName.maximumAlphanumericLength).contains(scalars.count)
                    && sender.allSatisfy(SenderName.safeCharacters.contains)
                    && !sender.allSatisfy { $0 == " " }
                    && !sender.allSatisfy(\.isNumber),
                "accepted alphanumeric sender \(sender.debugDescription)")
        }
    }
}

/// Segmentation, with the standard policy and a small one (so that short inputs split): the parts put together are
/// the text, scalar for scalar; the encoding is GSM-7 exactly when the alphabet carries every character; the length
/// is the sum of the costs; one part when it fits, else non-empty parts of at most a part's capacity, each holding
/// whole escape pairs and surrogate pairs, and parts × capacity bound the length; the length error agrees.
enum SegmentFuzz {
    static let small = SegmentationPolicy(
        gsmSinglePart: 12, gsmConcatenatedPart: 7, ucs2SinglePart: 6, ucs2ConcatenatedPart: 3, maximumParts: 4)

    static func run(_ bytes: [UInt8], _ check: inout PropertyCheck) {
        let text = String(fuzzBytes: bytes)
        for policy in [SegmentationPolicy.standard, small] {
            run(text, policy, &check)
        }
    }

    static func run(_ text: String, _ policy: SegmentationPolicy, _ check: inout PropertyCheck) {
        let counter = SegmentCounter(policy: policy)
        let segmentation = counter.segment(text)
        let gsm = text.unicodeScalars.allSatisfy { GSMAlphabet.septets(for: $0) != nil }
        check.expect(segmentation.encoding == (gsm ? .gsm7 : .ucs2), "encoding \(segmentation.encoding)")
        func cost(_ scalar: Unicode.Scalar) -> Int {
            gsm ? GSMAlphabet.septets(for: scalar)! : scalar.utf16.count
        }
        func cost(_ part: String) -> Int { part.unicodeScalars.reduce(0) { $0 + cost($1) } }
        let length = cost(text)
        check.expect(segmentation.length == length, "length \(segmentation.length), expected \(length)")
        if !gsm { check.expect(length == text.utf16.count, "UCS-2 length is not the UTF-16 count") }
        let joined = segmentation.parts.flatMap { Array($0.unicodeScalars) }
        check.expect(joined == Array(text.unicodeScalars), "the parts are not the text")
        let single = gsm ? policy.gsmSinglePart : policy.ucs2SinglePart
        let capacity = gsm ? policy.gsmConcatenatedPart : policy.ucs2ConcatenatedPart
        if length <= single {
            check.expect(segmentation.partCount == 1, "\(segmentation.partCount) parts for \(length) units")
        } else {
            check.expect(segmentation.partCount >= 2, "one part for \(length) units")
            check.expect(segmentation.partCount * capacity >= length, "parts × capacity < length")
            // Each part but the last is full up to one character (a pair that would not fit).
            check.expect((segmentation.partCount - 1) * (capacity - 1) < length, "more parts than needed")
            for part in segmentation.parts {
                check.expect(!part.isEmpty, "an empty part")
                check.expect(cost(part) <= capacity, "a part of \(cost(part)) units > \(capacity)")
                // Strings hold whole scalars: a surrogate pair or an escape pair is split only if a part's UTF-16
                // or septet count is odd against its scalars, which the costs above already rule out.
                check.expect(part.utf16.count == part.unicodeScalars.reduce(0) { $0 + $1.utf16.count }, "broken pair")
            }
        }
        let error = counter.lengthError(for: text, longAllowed: true)
        let expected: GatewayErrorCode? =
            text.isEmpty ? .messageEmpty : segmentation.partCount > policy.maximumParts ? .messageTooLong : nil
        check.expect(
            error == expected, "length error \(String(describing: error)), expected \(String(describing: expected))")
        if segmentation.partCount > 1, !text.isEmpty {
            check.expect(
                counter.lengthError(for: text, longAllowed: false) == .messageTooLongForSinglePart,
                "long text without type=long is not 105")
        }
    }
}
