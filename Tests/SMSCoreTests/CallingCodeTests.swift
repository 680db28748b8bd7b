import SMSCore
import Testing

/// Every country code ITU-T assigns under Recommendation E.164 (the TSB's list annexed to the Operational Bulletin),
/// written down here independently of the table under test. 970 is formally "reserved" (ITU Resolution 99) and in
/// use by Palestine. Spare and merely reserved codes are in `spareCodes` below.
private let ituAssignedCodes: Set<String> = Set(
    """
    1
    20 211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 236 237 238 239
    240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255 256 257 258 260 261 262 263 264 265 266
    267 268 269 27 290 291 297 298 299
    30 31 32 33 34 350 351 352 353 354 355 356 357 358 359 36 370 371 372 373 374 375 376 377 378 379 380 381
    382 383 385 386 387 388 389 39
    40 41 420 421 423 43 44 45 46 47 48 49
    500 501 502 503 504 505 506 507 508 509 51 52 53 54 55 56 57 58 590 591 592 593 594 595 596 597 598 599
    60 61 62 63 64 65 66 670 672 673 674 675 676 677 678 679 680 681 682 683 685 686 687 688 689 690 691 692
    7
    800 808 81 82 84 850 852 853 855 856 86 870 878 880 881 882 883 886 888
    90 91 92 93 94 95 960 961 962 963 964 965 966 967 968 970 971 972 973 974 975 976 977 979 98 991 992 993
    994 995 996 998
    """.split(whereSeparator: \.isWhitespace).map(String.init)
)

/// Spare codes, and codes ITU only reserves (875–877 maritime, 879 national non-commercial, 969, 999).
private let spareCodes: [String] = """
    210 214 215 217 219 259 280 281 282 283 284 285 286 287 288 289 292 293 294 295 296 384 422 424 425 426 427
    428 429 671 684 693 694 695 696 697 698 699 801 802 803 804 805 806 807 809 830 831 832 833 834 835 836 837
    838 839 851 854 857 858 859 871 872 873 874 875 876 877 879 884 885 887 889 890 891 892 893 894 895 896 897
    898 899 969 978 990 999
    """.split(whereSeparator: \.isWhitespace).map(String.init)

@Suite struct CallingCodeTests {
    /// (digits, expected code, a region it must list — nil for a non-geographic code)
    @Test(
        arguments: [
            // Zone 1: the NANP and its countries' area codes
            ("12125550123", "1", "US"), ("14165550123", "1", "CA"), ("18765550123", "1876", "JM"),
            ("16585550123", "1658", "JM"), ("12425550123", "1242", "BS"), ("18095550123", "1809", "DO"),
            ("18295550123", "1829", "DO"), ("18495550123", "1849", "DO"), ("17875550123", "1787", "PR"),
            ("19395550123", "1939", "PR"), ("16715550123", "1671", "GU"), ("17215550123", "1721", "SX"),
            // Zone 7: Russia, and Kazakhstan in 7 6xx / 7 7xx
            ("79161234567", "7", "RU"), ("74951234567", "7", "RU"), ("77012345678", "77", "KZ"),
            ("77271234567", "77", "KZ"), ("76012345678", "76", "KZ"),
            // A mobile range inside a code resolves to the code
            ("447700900123", "44", "GB"), ("447400123456", "44", "GB"), ("442079460000", "44", "GB"),
            ("441481123456", "441481", "GG"), ("441534123456", "441534", "JE"), ("441624123456", "441624", "IM"),
            ("31612345678", "31", "NL"), ("31201234567", "31", "NL"), ("32478123456", "32", "BE"),
            ("3530871234567", "353", "IE"), ("35818123456", "35818", "AX"), ("358401234567", "358", "FI"),
            ("4779123456", "4779", "SJ"), ("4791234567", "47", "NO"),
            ("390669812345", "3906698", "VA"), ("393123456789", "39", "IT"), ("3791234567", "379", "VA"),
            ("61891621234", "6189162", "CC"), ("61891641234", "6189164", "CX"), ("61412345678", "61", "AU"),
            // 599: Curaçao and the Caribbean Netherlands
            ("5999123456", "5999", "CW"), ("5997123456", "5997", "BQ"), ("5993181234", "5993", "BQ"),
            ("5994161234", "5994", "BQ"), ("5995421234", "599", "CW"),
            // 262 Réunion and Mayotte, 269 Comoros
            ("262692123456", "262", "RE"), ("262639123456", "262", "YT"), ("2693212345", "269", "KM"),
            ("20123456789", "20", "EG"), ("211912345678", "211", "SS"), ("27821234567", "27", "ZA"),
            ("2901234", "290", "SH"), ("2476123", "247", "AC"), ("3831234567", "383", "XK"),
            ("97059123456", "970", "PS"),
            // Non-geographic codes
            ("80012345678", "800", nil), ("88213123456", "882", nil), ("8816123456789", "881", nil),
            ("3883123456", "388", nil), ("87012345678", "870", nil),
        ] as [(String, String, String?)])
    func longestPrefixWins(digits: String, code: String, region: String?) throws {
        let match = try #require(CallingCode.match(digits))
        #expect(match.code == code)
        if let region {
            #expect(match.regions.contains(region), "\(match)")
            #expect(match.isGeographic)
        } else {
            #expect(!match.isGeographic)
        }
        #expect(try PhoneNumber(parsing: "+" + digits).callingCode == match)
    }

    @Test(arguments: spareCodes)
    func spareCodesMatchNothing(code: String) {
        #expect(CallingCode.lookup(code) == nil)
        #expect(CallingCode.match(code + "1234567") == nil)
    }

    @Test func emptyAndNonNumbersMatchNothing() {
        #expect(CallingCode.match("") == nil)
        #expect(CallingCode.match("0031612345678") == nil)
        #expect(CallingCode.match("8") == nil)
    }

    @Test func everyAssignedCountryCodeIsInTheTable() {
        let codes = Set(CallingCode.all.map(\.code))
        // A country code is an entry that no other entry is a prefix of; the rest are sub-prefixes inside one.
        let countryCodes = codes.filter { code in !codes.contains { $0 != code && code.hasPrefix($0) } }
        #expect(ituAssignedCodes.subtracting(countryCodes).sorted() == [], "missing")
        #expect(countryCodes.subtracting(ituAssignedCodes).sorted() == [], "not assigned by ITU")
        // Country codes form a prefix code; this guards the list above against typos.
        for code in ituAssignedCodes {
            #expect(!ituAssignedCodes.contains { $0 != code && code.hasPrefix($0) }, "\(code)")
        }
        #expect(ituAssignedCodes.isDisjoint(with: spareCodes))
    }

    @Test func subPrefixesAreGeographic() {
        let codes = Set(CallingCode.all.map(\.code))
        for entry in CallingCode.all where !ituAssignedCodes.contains(entry.code) {
            #expect(entry.isGeographic, "\(entry)")
            #expect(codes.contains { $0 != entry.code && entry.code.hasPrefix($0) }, "\(entry)")
        }
    }

    @Test func tableIsWellFormed() {
        #expect(CallingCode.all.count > 230)
        #expect(Set(CallingCode.all.map(\.code)).count == CallingCode.all.count)
        #expect(CallingCode.all.map(\.code) == CallingCode.all.map(\.code).sorted())
        for entry in CallingCode.all {
            #expect(entry.code.allSatisfy { $0.isASCII && $0.isWholeNumber } && entry.code.first != "0", "\(entry)")
            let wellFormed = entry.regions.allSatisfy {
                $0.count == 2 && $0.allSatisfy { $0.isASCII && $0.isUppercase }
            }
            #expect(wellFormed, "\(entry)")
            #expect(!entry.name.isEmpty, "\(entry)")
            #expect(CallingCode.lookup(entry.code) == entry)
        }
        #expect(CallingCode.lookup("882")?.isGeographic == false)
        #expect(CallingCode.lookup("31")?.description == "+31 Netherlands")
    }

    @Test(arguments: [
        ("jm", ["1658", "1876"]), ("DO", ["1809", "1829", "1849"]), ("PR", ["1787", "1939"]), ("KZ", ["76", "77"]),
        ("VA", ["379", "3906698"]), ("BQ", ["599", "5993", "5994", "5997"]), ("NL", ["31"]), ("YT", ["262"]),
        ("ZZ", []),
    ])
    func codesForRegion(region: String, codes: [String]) {
        #expect(CallingCode.codes(forRegion: region).map(\.code).sorted() == codes)
    }
}
