import PostgresLibpq

/// What may go into the log about an error: PostgreSQL's DETAIL can quote a row (a message's text, a name), so it is
/// left out.
package func loggableDescription(of error: any Error) -> String {
    if var failure = error as? PostgresError {
        failure.detail = nil
        return String(describing: failure)
    }
    return String(describing: error)
}
