import Foundation
import ResellerCore
import SMSCore

/// The rules of contacts and groups, shared by the JSON API and the CSV import.
package enum ContactRules {
    package static let maximumNameLength = 200
    package static let maximumReferenceLength = 100
    package static let maximumGroupNameLength = 100
    /// Contact ids in one membership change.
    package static let maximumMembershipBatch = 1_000

    /// `text` as an E.164 number, or why it is not one, with the 1601 code a send to it would get (103 when empty,
    /// 106 otherwise).
    package static func parseNumber(_ text: String) -> Result<PhoneNumber, NumberProblem> {
        do {
            return .success(try PhoneNumber(parsing: text))
        } catch {
            let message =
                switch error {
                case .empty: "is required"
                case .invalidCharacter(let character):
                    "must be an international number, country code first (+31 6 12345678); \"\(character)\" is not allowed"
                case .missingCountryCode:
                    "must start with the country code (+31 6 12345678 or 0031612345678), not with 0"
                case .tooShort: "must have at least \(PhoneNumber.minimumDigits) digits with the country code"
                case .tooLong: "must have at most \(PhoneNumber.maximumDigits) digits with the country code"
                }
            let code: GatewayErrorCode = error == .empty ? .recipientEmpty : .invalidMobileNumber
            return .failure(NumberProblem(message: message, gatewayCode: code))
        }
    }

    package struct NumberProblem: Error, Equatable {
        package var message: String
        package var gatewayCode: GatewayErrorCode
    }

    /// Why `name` cannot name a group (it is already trimmed); nil when it can.
    package static func groupNameProblem(_ name: String) -> String? {
        if name.contains(";") { return "must not contain \";\" (it separates group names in the CSV import)" }
        return nil
    }
}

extension Validator {
    /// A contact's number, normalised to E.164 digits; the 1601 code (103 or 106) on failure.
    package mutating func phoneNumber(_ value: String?, field: String) -> PhoneNumber? {
        guard let value else { return nil }
        switch ContactRules.parseNumber(value) {
        case .success(let number): return number
        case .failure(let problem):
            fail(field, problem.message, gatewayCode: problem.gatewayCode)
            return nil
        }
    }

    /// A group name: 1–100 characters, trimmed, no control characters, no `;`.
    package mutating func groupName(_ value: String?, field: String) -> String? {
        guard let name = text(value, field: field, maximum: ContactRules.maximumGroupNameLength) else { return nil }
        if let problem = ContactRules.groupNameProblem(name) {
            fail(field, problem)
            return nil
        }
        return name
    }
}

/// What a CSV import does with a number the sub-account already has.
package enum ContactImportMode: String, Sendable, Codable {
    /// Leave the existing contact exactly as it is (fields and groups).
    case skip
    /// Replace its fields with the file's (for the columns the file has; an empty cell clears) and add it to the
    /// file's groups (memberships are only ever added).
    case update
}

/// One valid line of a contacts file.
package struct ContactImportRow: Sendable, Equatable {
    package var line: Int
    package var number: PhoneNumber
    package var name: String?
    package var reference: String?
    /// As written (trimmed), without duplicates (case-insensitively).
    package var groups: [String]
}

/// The CSV form of contacts: a header naming `number` and any of `name`, `reference` and `groups` (group names
/// separated by `;`), in any order; one contact per line. Read with `CSVReader`.
///
/// ```csv
/// number,name,groups
/// +31 6 12345678,Anna de Vries,Customers;VIP
/// 0044 7700 900123,John Smith,
/// ```
package enum ContactCSV {
    /// The largest file accepted.
    package static let maximumBytes = 8 << 20
    /// The most contacts in one file.
    package static let maximumContacts = 100_000

    package static let reader = CSVReader(columns: ["number", "name", "reference", "groups"], required: ["number"])
}

/// Validates the lines of a contacts file one by one, collecting every problem (so a file is reported completely,
/// not one error per upload), and refuses a number that appears twice.
package struct ContactImportCollector {
    /// More errors than this are summarised in one last error.
    package static let maximumReportedErrors = 500

    package init() {}

    package private(set) var rows: [ContactImportRow] = []
    package private(set) var errors: [DomainError.FieldError] = []
    /// The optional columns the file has (an update only touches those).
    package private(set) var columns: Set<String> = []
    private var errorCount = 0
    private var seen: [PhoneNumber: Int] = [:]

    package mutating func fail(_ field: String, _ message: String, gatewayCode: GatewayErrorCode? = nil) {
        errorCount += 1
        if errors.count < Self.maximumReportedErrors {
            errors.append(.init(field: field, message: message, gatewayCode: gatewayCode))
        }
    }

    /// Reads a whole file.
    package mutating func read(_ bytes: [UInt8]) {
        let (columns, items) = ContactCSV.reader.read(bytes)
        self.columns = columns
        for item in items {
            switch item {
            case .problem(let field, let message): fail(field, message)
            case .record(let line, let fields): add(line: line, fields: fields)
            }
        }
    }

    /// Adds one line from its fields by column name.
    package mutating func add(line: Int, fields: [String: String]) {
        var validator = Validator()
        let number = validator.phoneNumber(fields["number"] ?? "", field: "line \(line): number")
        var valid = validator.errors.isEmpty
        if let number {
            if let first = seen[number] {
                validator.fail("line \(line): number", "\(number) is already on line \(first)")
                valid = false
            } else {
                seen[number] = line
            }
        }
        let name = Self.optional(
            fields["name"], field: "line \(line): name", maximum: ContactRules.maximumNameLength, &validator)
        let reference = Self.optional(
            fields["reference"], field: "line \(line): reference", maximum: ContactRules.maximumReferenceLength,
            &validator)
        var groups: [String] = []
        var groupKeys: Set<String> = []
        for part in (fields["groups"] ?? "").split(separator: ";", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let group = validator.groupName(trimmed, field: "line \(line): groups") else { continue }
            if groupKeys.insert(group.lowercased()).inserted { groups.append(group) }
        }
        for error in validator.errors { fail(error.field, error.message, gatewayCode: error.gatewayCode) }
        valid = valid && validator.errors.isEmpty
        if valid, rows.count + 1 > ContactCSV.maximumContacts {
            fail("line \(line)", "a file has at most \(ContactCSV.maximumContacts) contacts")
            valid = false
        }
        guard valid, let number else { return }
        rows.append(ContactImportRow(line: line, number: number, name: name, reference: reference, groups: groups))
    }

    /// An optional text cell: empty means none.
    private static func optional(_ value: String?, field: String, maximum: Int, _ validator: inout Validator) -> String?
    {
        guard let value, !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
        return validator.text(value, field: field, maximum: maximum)
    }

    /// The rows, or a 422 with every problem found.
    package func result() throws -> [ContactImportRow] {
        var errors = errors
        if errorCount > errors.count {
            errors.append(.init(field: "file", message: "\(errorCount - errors.count) more errors not shown"))
        }
        if errors.isEmpty, rows.isEmpty { errors.append(.init(field: "file", message: "the file has no contacts")) }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return rows
    }
}
