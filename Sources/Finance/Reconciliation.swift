import Foundation
import Gateway1601
import ResellerCore
import SMSCore

/// How reconciliation runs (docs/reconciliation.md).
package struct ReconciliationSettings: Sendable, Equatable {
    /// Between two scheduled runs of one connection; `.zero` switches the job off (the admin can still run it).
    package var interval: Duration = .seconds(900)
    /// The drift, in ledger minor units, past which `upstream.credit_drift` is raised.
    package var driftThreshold: Int64 = 10 * Money.unitsPerCredit
    /// Rows of the upstream's report table read per run: the most the dispatcher reads.
    package var reportRows: Int = 10_000
    /// Tries at a quiet instant (nothing in flight, nothing recorded meanwhile) before an inexact snapshot is kept.
    package var quietAttempts: Int = 5
    /// Pause between two such tries.
    package var quietPause: Duration = .milliseconds(300)
    /// How long a run holds its connection at most; a crashed run's claim lapses after it.
    package var runLease: Duration = .seconds(300)

    package init() {}

    /// The threshold in credits, as the settings write it (`10.0000`).
    package var driftThresholdText: String { Money(minorUnits: driftThreshold).description }

    /// A threshold given in credits (`10`, `2.5`), in minor units; nil when it is not a non-negative amount.
    package static func threshold(parsing text: String) -> Int64? {
        (try? Money(parsing: text.trimmingCharacters(in: .whitespaces)))?.minorUnits
    }
}

/// What made a run.
package enum ReconciliationTrigger: String, Sendable, Codable {
    case schedule
    case admin
}

/// What a run achieved.
package enum ReconciliationOutcome: String, Sendable, Codable {
    /// A snapshot and the day reports.
    case ok
    /// A snapshot, but no day reports (the report table could not be read, or it covers no known period).
    case partial
    /// Nothing: the credits could not be read.
    case failed
}

/// The kinds of difference between the upstream's report table and our messages.
package enum ReconciliationDifferenceKind: String, Sendable, Codable, CaseIterable {
    /// (a) Listed by the upstream, unknown to us, or naming a message of ours that we never recorded as taken.
    case unknownUpstream = "unknown_upstream"
    /// (b) One message of ours listed more than once: charged more than once.
    case listedTwice = "listed_twice"
    /// (c) Submitted per our records (with an upstream id) inside the covered window, and not listed.
    case missingUpstream = "missing_upstream"
    /// (d) Listed once for a message of ours, under another upstream id than ours.
    case otherUpstreamID = "other_upstream_id"
}

/// One difference and the message that explains it. Amounts are ledger minor units.
package struct ReconciliationDifference: Codable, Sendable, Equatable {
    package var kind: ReconciliationDifferenceKind
    /// Our message, when the difference concerns one.
    package var messageId: UUID?
    /// Our upstream id for it.
    package var upstreamId: String?
    /// The upstream ids the table lists for it (or the unknown row's).
    package var listedUpstreamIds: [String]
    /// The row's `referentie`.
    package var reference: String?
    /// Our message's status.
    package var status: String?
    package var acceptedAt: Date?
    package var submittedAt: Date?
    /// The row's status word and date as listed.
    package var listedStatus: String?
    /// What the upstream charged (or did not) beyond our books, from our price of the message; nil when unknown.
    package var upstreamCost: Int64?
    package var detail: String
}

/// A message of ours as the comparison needs it.
package struct ReconciledMessage: Decodable, Sendable, Equatable {
    package var id: UUID
    package var upstreamID: String?
    package var connectionID: UUID?
    package var status: String
    package var acceptedAt: Date
    package var submittedAt: Date?
    package var upstreamCost: Int64

    package init(
        id: UUID, upstreamID: String?, connectionID: UUID?, status: String, acceptedAt: Date, submittedAt: Date?,
        upstreamCost: Int64
    ) {
        self.id = id
        self.upstreamID = upstreamID
        self.connectionID = connectionID
        self.status = status
        self.acceptedAt = acceptedAt
        self.submittedAt = submittedAt
        self.upstreamCost = upstreamCost
    }

    package enum CodingKeys: String, CodingKey {
        case id, status
        case upstreamID = "upstream_id"
        case connectionID = "connection_id"
        case acceptedAt = "accepted_at"
        case submittedAt = "submitted_at"
        case upstreamCost = "upstream_cost"
    }

    /// Submitted per our records: the upstream took it.
    package var isTaken: Bool { upstreamID != nil && submittedAt != nil }
}

/// The comparison of one report table with our messages, before it is cut into days.
package struct ReportComparison: Sendable, Equatable {
    /// Nil when the table lists the whole account (shorter than asked and than the 100 rows the document shows).
    package var windowStart: Date?
    /// When the report table was asked for: messages recorded as submitted later are not expected in it.
    package var windowEnd: Date
    /// Whether the table covers a known period at all (it lists the whole account or at least one message of ours).
    package var covers: Bool
    package var rowsListed: Int
    /// Per difference, the instant that places it in a day.
    package var differences: [(at: Date, difference: ReconciliationDifference)]
    /// Our taken messages in the window that the table lists as they should be, by submission time.
    package var matched: [Date]
    /// Rows naming a message of ours whose answer is not recorded yet (in flight or in doubt): not a difference.
    package var inFlight: [Date]

    package static func == (left: Self, right: Self) -> Bool {
        left.windowStart == right.windowStart && left.windowEnd == right.windowEnd && left.covers == right.covers
            && left.rowsListed == right.rowsListed && left.matched == right.matched && left.inFlight == right.inFlight
            && left.differences.map(\.difference) == right.differences.map(\.difference)
            && left.differences.map(\.at) == right.differences.map(\.at)
    }
}

/// The rules of reconciliation that need no database (docs/reconciliation.md).
package enum Reconciliation {
    /// Rows the upstream's document shows in its example: a table at least this long may have been cut.
    package static let documentedReportRows = 100

    /// The upstream's `credits` answer in ledger minor units (1 credit = 10 000 units), rounded half to even past four
    /// decimals (the upstream writes at most one or two).
    package static func minorUnits(ofCredits credits: Decimal) -> Int64 {
        var scaled = credits * Decimal(Money.unitsPerCredit)
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .bankers)
        return NSDecimalNumber(decimal: rounded).int64Value
    }

    /// How much later than the upstream's acceptance our record of a submission can be: the dispatcher's lease (a
    /// call's answer is recorded within it). A message of ours recorded as submitted more than this after the oldest
    /// message of ours the table lists was taken after it, so a table listing that one must list it too.
    package static func recordingMargin(requestTimeout: Duration) -> Duration {
        max(.seconds(60), requestTimeout * 2)
    }

    /// Compares the table (`rows`, newest first, `asked` rows asked) with our messages: `known` are those the table
    /// names (by `referentie` = our id, or by upstream id through this connection), `windowMessages(start)` those
    /// submitted through this connection after `start` and up to `askedAt`.
    package static func compare(
        rows: [ReportEntry], asked: Int, connectionID: UUID, known: [ReconciledMessage], askedAt: Date,
        margin: Duration, windowMessages: (Date?) async throws -> [ReconciledMessage]
    ) async rethrows -> ReportComparison {
        let byID = Dictionary(known.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let byUpstreamID = Dictionary(
            known.compactMap { message in
                message.connectionID == connectionID ? message.upstreamID.map { ($0, message) } : nil
            }, uniquingKeysWith: { first, _ in first })
        let wholeAccount = rows.count < min(asked, documentedReportRows)
        // Which message of ours each row is: by referentie first (our id as the dispatcher sends it), else by upstream id.
        func owner(_ row: ReportEntry) -> ReconciledMessage? {
            if let id = UUID(uuidString: row.reference), let message = byID[id] { return message }
            return byUpstreamID[row.smsID]
        }
        let oldestListed =
            rows.compactMap { row -> Date? in
                guard let message = owner(row), message.connectionID == connectionID, message.isTaken,
                    message.upstreamID == row.smsID
                else { return nil }
                return message.submittedAt
            }.min()
        let windowStart: Date? = wholeAccount ? nil : oldestListed.map { $0.addingTimeInterval(margin.inSeconds) }
        let covers = wholeAccount || oldestListed != nil
        var comparison = ReportComparison(
            windowStart: windowStart, windowEnd: askedAt, covers: covers, rowsListed: rows.count, differences: [],
            matched: [], inFlight: [])

        var rowsByOwner: [UUID: [ReportEntry]] = [:]
        var ownerOrder: [UUID] = []
        // The day of an unknown row: its status date when it has one, else the submission of the nearest newer row of
        // ours, else the run's day.
        var lastKnownTime: Date?
        for row in rows {
            guard let message = owner(row) else {
                let at = row.updatedAt?.date(in: GatewayDateTime.gatewayTimeZone) ?? lastKnownTime ?? askedAt
                comparison.differences.append(
                    (
                        at,
                        ReconciliationDifference(
                            kind: .unknownUpstream, messageId: nil, upstreamId: nil, listedUpstreamIds: [row.smsID],
                            reference: row.reference.isEmpty ? nil : row.reference, status: nil, acceptedAt: nil,
                            submittedAt: nil, listedStatus: listedStatus(row), upstreamCost: nil,
                            detail: row.reference.isEmpty
                                ? "listed by the upstream as \(row.smsID) without a referentie; no message of ours has that id"
                                : "listed by the upstream as \(row.smsID) with referentie \(row.reference), which names no message of ours"
                        )
                    ))
                continue
            }
            lastKnownTime = message.submittedAt ?? message.acceptedAt
            if rowsByOwner[message.id] == nil { ownerOrder.append(message.id) }
            rowsByOwner[message.id, default: []].append(row)
        }

        var listedOurs = Set<UUID>()
        for id in ownerOrder {
            guard let message = byID[id] ?? byUpstreamID.values.first(where: { $0.id == id }),
                let listed = rowsByOwner[id]
            else { continue }
            listedOurs.insert(id)
            let at = message.submittedAt ?? message.acceptedAt
            let ids = listed.reversed().map(\.smsID)
            if !message.isTaken || message.connectionID != connectionID {
                if ["queued", "scheduled"].contains(message.status) {
                    comparison.inFlight.append(at)
                    continue
                }
                comparison.differences.append(
                    (
                        at,
                        ReconciliationDifference(
                            kind: .unknownUpstream, messageId: message.id, upstreamId: message.upstreamID,
                            listedUpstreamIds: ids, reference: listed[0].reference, status: message.status,
                            acceptedAt: message.acceptedAt, submittedAt: message.submittedAt,
                            listedStatus: listedStatus(listed[0]),
                            upstreamCost: message.upstreamCost * Int64(ids.count),
                            detail: message.connectionID != connectionID && message.isTaken
                                ? "listed by the upstream as \(ids.joined(separator: ", ")), but our records have it taken through another connection"
                                : "listed by the upstream as \(ids.joined(separator: ", ")), but our message is \(message.status) and was never recorded as taken: the upstream charged for it"
                        )
                    ))
                continue
            }
            if listed.count > 1 {
                comparison.differences.append(
                    (
                        at,
                        ReconciliationDifference(
                            kind: .listedTwice, messageId: message.id, upstreamId: message.upstreamID,
                            listedUpstreamIds: ids, reference: listed[0].reference, status: message.status,
                            acceptedAt: message.acceptedAt, submittedAt: message.submittedAt,
                            listedStatus: listedStatus(listed[0]),
                            upstreamCost: message.upstreamCost * Int64(listed.count - 1),
                            detail:
                                "listed \(listed.count) times by the upstream (\(ids.joined(separator: ", "))): charged \(listed.count - 1) time(s) more than our records, which have it as \(message.upstreamID ?? "")"
                        )
                    ))
            } else if listed[0].smsID != message.upstreamID {
                comparison.differences.append(
                    (
                        at,
                        ReconciliationDifference(
                            kind: .otherUpstreamID, messageId: message.id, upstreamId: message.upstreamID,
                            listedUpstreamIds: ids, reference: listed[0].reference, status: message.status,
                            acceptedAt: message.acceptedAt, submittedAt: message.submittedAt,
                            listedStatus: listedStatus(listed[0]), upstreamCost: 0,
                            detail:
                                "listed by the upstream as \(listed[0].smsID), but our records have it as \(message.upstreamID ?? "")"
                        )
                    ))
            } else {
                comparison.matched.append(at)
            }
        }

        if covers {
            for message in try await windowMessages(windowStart)
            where message.isTaken && !listedOurs.contains(message.id) {
                guard let submittedAt = message.submittedAt, submittedAt <= askedAt else { continue }
                if let windowStart, submittedAt <= windowStart { continue }
                comparison.differences.append(
                    (
                        submittedAt,
                        ReconciliationDifference(
                            kind: .missingUpstream, messageId: message.id, upstreamId: message.upstreamID,
                            listedUpstreamIds: [], reference: message.id.uuidString.lowercased(),
                            status: message.status, acceptedAt: message.acceptedAt, submittedAt: submittedAt,
                            listedStatus: nil, upstreamCost: -message.upstreamCost,
                            detail:
                                "recorded as taken by the upstream as \(message.upstreamID ?? "") (its cost is on our ledger), but not in the upstream's report table, which reaches back past it"
                        )
                    ))
            }
        }
        return comparison
    }

    private static func listedStatus(_ row: ReportEntry) -> String {
        var text = row.status.rawValue
        if let date = row.updatedAt { text += " " + date.reportText }
        return text
    }

    /// The UTC day of `date`.
    package static func day(of date: Date) -> Date {
        utcCalendar.startOfDay(for: date)
    }

    package static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The comparison cut into UTC days: one report per day from the window's first day (or the first difference or
    /// match when the table lists the whole account) to the day the table was read.
    package static func days(of comparison: ReportComparison) -> [DayComparison] {
        guard comparison.covers else { return [] }
        let end = comparison.windowEnd
        var first = day(of: end)
        let instants =
            comparison.differences.map(\.at) + comparison.matched + comparison.inFlight
            + [comparison.windowStart].compactMap { $0 }
        for instant in instants where instant <= end { first = min(first, day(of: instant)) }
        var reports: [DayComparison] = []
        var start = first
        while start <= end {
            let next = utcCalendar.date(byAdding: .day, value: 1, to: start)!
            let from = comparison.windowStart.map { max($0, start) } ?? start
            let until = min(next, end)
            var report = DayComparison(
                day: start, coveredFrom: from, coveredUntil: until, complete: from == start && until == next,
                rowsListed: comparison.rowsListed, matched: 0, inFlight: 0, differences: [])
            report.matched = comparison.matched.count { $0 >= start && $0 < next }
            report.inFlight = comparison.inFlight.count { $0 >= start && $0 < next }
            report.differences = comparison.differences.filter { $0.at >= start && $0.at < next }.map(\.difference)
            // A day the table does not reach at all has nothing to say about missing messages.
            if from < until || !report.differences.isEmpty || report.matched > 0 { reports.append(report) }
            start = next
        }
        return reports
    }
}

/// One UTC day of a comparison.
package struct DayComparison: Sendable, Equatable {
    package var day: Date
    package var coveredFrom: Date
    package var coveredUntil: Date
    package var complete: Bool
    package var rowsListed: Int
    package var matched: Int
    package var inFlight: Int
    package var differences: [ReconciliationDifference]

    package func count(_ kind: ReconciliationDifferenceKind) -> Int { differences.count { $0.kind == kind } }
}
