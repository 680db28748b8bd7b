import ResellerCore
import SMSCore

/// The three price layers of a message.
package enum PriceLayer: String, Sendable, Codable, CaseIterable {
    /// What 1601 charges the platform (the admin's).
    case upstreamCost = "upstream_cost"
    /// What the platform charges a reseller (the admin's).
    case wholesale
    /// What a reseller charges a sub-account (the reseller's).
    case retail

    /// Platform lists belong to the admin; retail lists to a reseller.
    package var isPlatform: Bool { self != .retail }
}

/// Whether an entry's prefix is sold.
package enum PriceStatus: String, Sendable, Codable, CaseIterable {
    case sellable
    /// Not offered: a send answers 107.
    case notSellable = "not_sellable"
    /// Refused by policy: a send answers 114.
    case forbidden

    /// The 1601 error a send priced by such an entry gets; nil when sellable.
    package var gatewayCode: GatewayErrorCode? {
        switch self {
        case .sellable: nil
        case .notSellable: .countryNotOffered
        case .forbidden: .countryNotPermitted
        }
    }
}

/// The limits and rules of price entries, defined once.
package enum PriceRules {
    /// The most a part may cost in any layer; more is refused as a typing error.
    package static let maximumPricePerPart = Money(credits: 1_000)
    /// The most entries a version may have.
    package static let maximumEntries = 50_000
    /// Prefixes are at most as long as a whole E.164 number.
    package static let maximumPrefixDigits = PhoneNumber.maximumDigits

    /// Why `prefix` cannot be an entry's prefix, or nil: 1–15 ASCII digits, not starting with 0, starting with an
    /// ITU-T calling code (`44`, `4479`, `1876`; not `4` or `88`).
    package static func prefixError(_ prefix: String) -> String? {
        if prefix.isEmpty { return "is required" }
        guard prefix.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), prefix.first != "0" else {
            return "must be digits only, a calling code optionally followed by more digits (e.g. 44 or 4479)"
        }
        if prefix.utf8.count > maximumPrefixDigits { return "must be at most \(maximumPrefixDigits) digits" }
        if CallingCode.match(prefix) == nil { return "does not start with an ITU-T calling code" }
        return nil
    }

    /// Parses a per-part price: a decimal string of 0 to ``maximumPricePerPart`` credits with at most 4 decimals.
    package static func parsePrice(_ text: String) -> Result<Money, PriceError> {
        do {
            let money = try Money(parsing: text)
            guard money <= maximumPricePerPart else {
                return .failure(PriceError("must be at most \(maximumPricePerPart) credits per part"))
            }
            return .success(money)
        } catch {
            return .failure(PriceError(error.description))
        }
    }

    package struct PriceError: Error {
        package var message: String
        package init(_ message: String) { self.message = message }
    }
}

/// A validated entry of a version being created.
package struct PriceEntryInput: Sendable, Hashable {
    package var prefix: String
    /// Per part; nil only for entries that are not sellable.
    package var price: Money?
    package var status: PriceStatus
    /// Where it came from, for messages about it.
    package var source: PriceEntrySource

    package init(prefix: String, price: Money? = nil, status: PriceStatus, source: PriceEntrySource) {
        self.prefix = prefix
        self.price = price
        self.status = status
        self.source = source
    }
}

/// Where an entry of a new version came from: a JSON array element or a CSV line.
package enum PriceEntrySource: Sendable, Hashable, CustomStringConvertible {
    case json(index: Int)
    case csv(line: Int)

    /// The name of one of its fields in a 422: `/entries/3/price` or `line 7: price`.
    package func field(_ name: String) -> String {
        switch self {
        case .json(let index): "/entries/\(index)/\(name)"
        case .csv(let line): "line \(line): \(name)"
        }
    }

    package var description: String {
        switch self {
        case .json(let index): "/entries/\(index)"
        case .csv(let line): "line \(line)"
        }
    }
}

/// Validates the entries of a new version one by one, collecting every problem (so a file is reported
/// completely, not one error per upload), and refuses duplicates.
package struct PriceEntryCollector {
    /// More errors than this are summarised in one last error.
    package static let maximumReportedErrors = 500

    package init() {}

    package private(set) var entries: [PriceEntryInput] = []
    package private(set) var errors: [DomainError.FieldError] = []
    private var errorCount = 0
    private var seen: [String: PriceEntrySource] = [:]

    package mutating func fail(_ field: String, _ message: String) {
        errorCount += 1
        if errors.count < Self.maximumReportedErrors { errors.append(.init(field: field, message: message)) }
    }

    /// Adds one entry from its raw fields; `status` nil or empty means sellable.
    package mutating func add(
        prefix rawPrefix: String, price rawPrice: String?, status rawStatus: String?, source: PriceEntrySource
    ) {
        var valid = true
        let prefix = rawPrefix
        if let problem = PriceRules.prefixError(prefix) {
            fail(source.field("prefix"), problem)
            valid = false
        } else if let first = seen[prefix] {
            fail(source.field("prefix"), "\(prefix) is already priced by \(first)")
            valid = false
        } else {
            // Registered even if another field of this entry is wrong: a second line with the prefix is a mistake too.
            seen[prefix] = source
        }
        var status = PriceStatus.sellable
        if let rawStatus, !rawStatus.isEmpty {
            if let parsed = PriceStatus(rawValue: rawStatus.lowercased()) {
                status = parsed
            } else {
                fail(source.field("status"), "must be sellable, not_sellable or forbidden")
                valid = false
            }
        }
        var price: Money?
        if let rawPrice, !rawPrice.isEmpty {
            switch PriceRules.parsePrice(rawPrice) {
            case .success(let money): price = money
            case .failure(let error):
                fail(source.field("price"), error.message)
                valid = false
            }
        } else if status == .sellable {
            fail(source.field("price"), "is required for a sellable entry")
            valid = false
        }
        if entries.count + 1 > PriceRules.maximumEntries, valid {
            fail(source.description, "a version has at most \(PriceRules.maximumEntries) entries")
            valid = false
        }
        guard valid else { return }
        entries.append(PriceEntryInput(prefix: prefix, price: price, status: status, source: source))
    }

    /// The entries, or a 422 with every problem found.
    package func result(emptyField: String) throws -> [PriceEntryInput] {
        var errors = errors
        if errorCount > errors.count {
            errors.append(.init(field: "file", message: "\(errorCount - errors.count) more errors not shown"))
        }
        if errors.isEmpty, entries.isEmpty {
            errors.append(.init(field: emptyField, message: "a version needs at least one entry"))
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return entries
    }
}
