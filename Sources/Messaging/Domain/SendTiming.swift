import Foundation

/// When an accepted send's messages are due, and until when transient upstream failures are retried: a send scheduled
/// for later waits (`scheduled`) until its time, any other is due at once (`queued`); either is retried until its due
/// time plus the retry deadline, then fails.
package struct SendTiming: Sendable, Equatable {
    package var status: MessageStatus
    package var due: Date
    package var deadline: Date

    package init(scheduleAt: Date?, acceptedAt now: Date, retryDeadline: Duration) {
        let scheduled = scheduleAt.map { $0 > now } ?? false
        status = scheduled ? .scheduled : .queued
        due = scheduled ? scheduleAt ?? now : now
        deadline = due.addingTimeInterval(Double(retryDeadline.components.seconds))
    }
}
