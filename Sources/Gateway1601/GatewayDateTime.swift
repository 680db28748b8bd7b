import Foundation

/// A wall-clock date and time as the gateway writes it, without a time zone (the gateway speaks its local time,
/// see `PROTOCOL.md`; ``GatewayDateTime/gatewayTimeZone`` is that zone).
public struct GatewayDateTime: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int
    public let hour: Int
    public let minute: Int
    public let second: Int

    /// The gateway's local time zone: Europe/Amsterdam (1601SMS is a Dutch service).
    public static let gatewayTimeZone = TimeZone(identifier: "Europe/Amsterdam") ?? TimeZone(secondsFromGMT: 0)!

    /// A validated date and time; `nil` when a field is out of range (month 13, 31 April, 29 February of a
    /// common year, hour 24, …).
    public init?(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int = 0) {
        guard (1...9999).contains(year), (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute),
            (0...59).contains(second), (1...Self.daysIn(month: month, year: year)).contains(day)
        else { return nil }
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (
            year, month, day, hour, minute, second
        )
    }

    /// The wall-clock time of `date` in `timeZone`.
    public init(_ date: Date, in timeZone: TimeZone = gatewayTimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        (year, month, day, hour, minute, second) = (
            parts.year ?? 1970, parts.month ?? 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0
        )
    }

    /// The instant this wall-clock time denotes in `timeZone`.
    public func date(in timeZone: TimeZone = gatewayTimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        return calendar.date(from: parts) ?? Date(timeIntervalSince1970: 0)
    }

    /// `yyyymmddhhii`, the `datum` of a scheduled send (seconds are dropped).
    public var scheduleText: String { pad(year, 4) + pad(month) + pad(day) + pad(hour) + pad(minute) }
    /// `yyyymmddhhmmss`, the `datum` of a delivery callback.
    public var callbackText: String { scheduleText + pad(second) }
    /// `dd/mm/yyyy hh:mm:ss`, the date of a delivery report.
    public var reportText: String {
        "\(pad(day))/\(pad(month))/\(pad(year, 4)) \(pad(hour)):\(pad(minute)):\(pad(second))"
    }

    public var description: String { reportText }

    /// Parses `yyyymmddhhii`.
    public init?(scheduleText text: some StringProtocol) {
        guard let f = Self.fields(text, widths: [4, 2, 2, 2, 2], separators: []) else { return nil }
        self.init(year: f[0], month: f[1], day: f[2], hour: f[3], minute: f[4])
    }

    /// Parses `yyyymmddhhmmss`.
    public init?(callbackText text: some StringProtocol) {
        guard let f = Self.fields(text, widths: [4, 2, 2, 2, 2, 2], separators: []) else { return nil }
        self.init(year: f[0], month: f[1], day: f[2], hour: f[3], minute: f[4], second: f[5])
    }

    /// Parses `dd/mm/yyyy hh:mm:ss`.
    public init?(reportText text: some StringProtocol) {
        guard let f = Self.fields(text, widths: [2, 2, 4, 2, 2, 2], separators: ["/", "/", " ", ":", ":"]) else {
            return nil
        }
        self.init(year: f[2], month: f[1], day: f[0], hour: f[3], minute: f[4], second: f[5])
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.year, lhs.month, lhs.day, lhs.hour, lhs.minute, lhs.second)
            < (rhs.year, rhs.month, rhs.day, rhs.hour, rhs.minute, rhs.second)
    }

    /// Splits `text` into fixed-width ASCII-digit fields with exact single-character separators between them.
    private static func fields(_ text: some StringProtocol, widths: [Int], separators: [Character]) -> [Int]? {
        var characters = Substring(text)
        var values: [Int] = []
        for (position, width) in widths.enumerated() {
            let field = characters.prefix(width)
            guard field.count == width, field.allSatisfy({ $0.isASCII && $0.isWholeNumber }), let value = Int(field)
            else { return nil }
            values.append(value)
            characters = characters.dropFirst(width)
            if position < separators.count {
                guard characters.first == separators[position] else { return nil }
                characters = characters.dropFirst()
            }
        }
        return characters.isEmpty ? values : nil
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private func pad(_ value: Int, _ width: Int = 2) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
