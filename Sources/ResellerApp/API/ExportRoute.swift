import Finance
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ResellerCore

/// `GET /exports/{dataset}`: a dataset streamed as CSV or JSON Lines, gzip-compressed when the client accepts it.
///
/// Served by its own route rather than a generated handler so that rows go from PostgreSQL to the socket with
/// back-pressure: the exporter reads the next COPY chunk only once the response writer has taken the last, and a
/// writer that fails (the client went away) cancels the query. Everything that can be refused is checked before the
/// first byte and answered as problem+json; a failure mid-stream can only cut the response (logged).
/// See docs/finance.md.
package struct ExportRoute: Sendable {
    package let handlers: APIHandlers
    package static let path = "/exports/:dataset"
    /// How current the rows are, and the replica's lag (docs/operations.md, "Read replica").
    static let dataAsOf = HTTPField.Name("X-Data-As-Of")!
    static let replicationLag = HTTPField.Name("X-Replication-Lag-Seconds")!

    package func register(on group: RouterGroup<ResellerRequestContext>) {
        group.get(RouterPath(Self.path)) { request, context in
            let started = ContinuousClock.now
            do {
                let response = try await answer(request, context: context, started: started)
                return response
            } catch {
                handlers.metrics.recordRequest(
                    operation: "exportDataset", status: Int(APIProblem.from(error).status.code),
                    duration: ContinuousClock.now - started)
                throw error
            }
        }
    }

    private func answer(_ request: Request, context: ResellerRequestContext, started: ContinuousClock.Instant)
        async throws -> Response
    {
        let principal = try Access.principal()
        let datasetName = context.parameters.get("dataset") ?? ""
        guard let dataset = ExportDataset(rawValue: datasetName) else {
            throw DomainError.notFound(
                "No dataset \(datasetName); one of \(ExportDataset.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        let query = request.uri.queryParameters
        func value(_ name: String) -> String? { query[name[...]].map(String.init) }
        var validator = Validator()
        func date(_ name: String) -> Date? {
            guard let text = value(name) else {
                validator.fail(name, "is required")
                return nil
            }
            guard let date = try? APIDates.date(from: text) else {
                validator.fail(name, "must be an RFC 3339 date-time")
                return nil
            }
            return date
        }
        let from = date("from")
        let to = date("to")
        let format = ExportFormat(rawValue: value("format") ?? ExportFormat.csv.rawValue)
        if format == nil { validator.fail("format", "must be csv or jsonl") }
        let accountID = handlers.uuidFilter(value("accountId"), field: "accountId", &validator)
        try validator.check()
        let usage = try await handlers.usageRequest(
            principal: principal, from: from!, to: to!, timeZone: value("timeZone"), groupBy: value("groupBy"),
            view: value("view"), resellerID: value("resellerId"), subAccountID: value("subAccountId"), country: nil,
            defaultGroups: [.day, .subAccount, .country])
        let export = ExportRequest(
            dataset: dataset, format: format!, scope: usage.scope, from: usage.from, to: usage.to,
            timeZone: usage.timeZone, gzip: Self.acceptsGzip(request.headers[values: .acceptEncoding]),
            accountID: accountID, groupBy: usage.groupBy, view: usage.view)
        let freshness = try await DataFreshness.read(handlers.reportsPool)
        let exporter = Exporter(pool: handlers.reportsPool)
        try await exporter.prepare(export)

        var headers: HTTPFields = [
            .contentType: format!.contentType,
            .contentDisposition: "attachment; filename=\"\(export.fileName)\"",
            .cacheControl: "no-store",
        ]
        if export.gzip { headers[.contentEncoding] = "gzip" }
        headers[Self.dataAsOf] = APIDates.string(from: freshness.asOf)
        headers[Self.replicationLag] = String(format: "%.3f", freshness.lagSeconds)
        headers[.vary] = "Accept-Encoding"
        let logger = context.logger
        let metrics = handlers.metrics
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                do {
                    let summary = try await exporter.run(export) { bytes in
                        try await writer.write(ByteBuffer(bytes: bytes))
                    }
                    try await writer.finish(nil)
                    metrics.recordRequest(
                        operation: "exportDataset", status: 200, duration: ContinuousClock.now - started)
                    logger.info(
                        "export finished",
                        metadata: [
                            "dataset": "\(dataset.rawValue)", "rows": "\(summary.rows)", "bytes": "\(summary.bytes)",
                        ])
                } catch {
                    metrics.recordRequest(
                        operation: "exportDataset", status: 499, duration: ContinuousClock.now - started)
                    logger.warning(
                        "export cut short",
                        metadata: ["dataset": "\(dataset.rawValue)", "error": "\(loggableDescription(of: error))"])
                    throw error
                }
            })
    }

    /// Whether `Accept-Encoding` allows gzip (`gzip` or `*` with a q-value above zero, RFC 9110).
    static func acceptsGzip(_ values: [String]) -> Bool {
        var gzip: Double?
        var any: Double?
        for element in values.flatMap({ $0.split(separator: ",") }) {
            let parts = element.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = parts.first else { continue }
            var q = 1.0
            for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
                q = Double(parameter.dropFirst(2)) ?? 0
            }
            if coding == "gzip" || coding == "x-gzip" { gzip = q }
            if coding == "*" { any = q }
        }
        return (gzip ?? any ?? 0) > 0
    }
}
