import Foundation
import Gateway1601
import Logging
import Messaging
import ResellerAPI
import ResellerCore
import SMSCore

/// Upstream connections: an admin resource. To anyone else a connection does not exist (404 on its paths, 403 on the
/// lists); a reseller may read which connection it sends through (id, name, status), never its settings.
extension APIHandlers {
    package func listUpstreamConnections(_ input: Operations.ListUpstreamConnections.Input) async throws
        -> Operations.ListUpstreamConnections.Output
    {
        _ = try Access.require(.admin)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let status = input.query.status.flatMap { UpstreamConnectionStatus(rawValue: $0.rawValue) }
        let rows = try await upstreamConnections.list(status: status, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(.init(items: page.items.map(Self.schema), nextCursor: page.nextCursor { $0.id.apiString })))
        )
    }

    package func createUpstreamConnection(_ input: Operations.CreateUpstreamConnection.Input) async throws
        -> Operations.CreateUpstreamConnection.Output
    {
        let principal = try Access.require(.admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let defaults = UpstreamConnectionSettings(name: "", baseURL: "", username: "", password: nil)
        let settings = try Self.upstreamSettings(
            base: defaults, name: body.name, baseUrl: body.baseUrl, username: body.username, password: body.password,
            segmentation: body.segmentation, concurrency: body.concurrency, rateLimitPerSecond: body.rateLimitPerSecond,
            requestTimeoutMs: body.requestTimeoutMs, singlePartCountries: body.singlePartCountries)
        guard let record = try await upstreamConnections.create(settings, by: AuditActor(principal)) else {
            throw APIProblem.conflict("An upstream connection named \(settings.name) exists already.")
        }
        logger.notice(
            "upstream connection created", metadata: ["connection": "\(record.name)", "id": "\(record.id.apiString)"])
        return .created(.init(body: .json(Self.schema(record))))
    }

    package func getUpstreamConnection(_ input: Operations.GetUpstreamConnection.Input) async throws
        -> Operations.GetUpstreamConnection.Output
    {
        let (_, id) = try adminConnectionID(input.path.connectionId)
        guard let record = try await upstreamConnections.find(id: id) else { throw Self.noConnection(id) }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func updateUpstreamConnection(_ input: Operations.UpdateUpstreamConnection.Input) async throws
        -> Operations.UpdateUpstreamConnection.Output
    {
        let (principal, id) = try adminConnectionID(input.path.connectionId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let outcome = try await upstreamConnections.update(id: id, by: AuditActor(principal)) { current in
            try Self.upstreamSettings(
                base: UpstreamConnectionSettings(current), name: body.name, baseUrl: body.baseUrl,
                username: body.username,
                password: body.password, segmentation: body.segmentation, concurrency: body.concurrency,
                rateLimitPerSecond: body.rateLimitPerSecond, requestTimeoutMs: body.requestTimeoutMs,
                singlePartCountries: body.singlePartCountries)
        }
        switch outcome {
        case .updated(let record): return .ok(.init(body: .json(Self.schema(record))))
        case .notFound: throw Self.noConnection(id)
        case .nameTaken: throw APIProblem.conflict("Another upstream connection has the name \(body.name ?? "").")
        }
    }

    package func pauseUpstreamConnection(_ input: Operations.PauseUpstreamConnection.Input) async throws
        -> Operations.PauseUpstreamConnection.Output
    {
        let (principal, id) = try adminConnectionID(input.path.connectionId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let reason = try Self.validatedReason(body.reason, required: true) ?? ""
        switch try await upstreamConnections.pause(id: id, reason: reason, code: nil, by: AuditActor(principal)) {
        case .paused(let record):
            logger.warning(
                "upstream connection paused",
                metadata: ["connection": "\(record.name)", "reason": "\(reason)", "by": "\(principal.actor)"])
            return .ok(.init(body: .json(Self.schema(record))))
        case .alreadyPaused(let record):
            throw APIProblem.conflict(
                "The upstream connection is paused already (since \(record.pausedAt.map { APIDates.string(from: $0) } ?? "?"))."
            )
        case .notFound:
            throw Self.noConnection(id)
        }
    }

    package func resumeUpstreamConnection(_ input: Operations.ResumeUpstreamConnection.Input) async throws
        -> Operations.ResumeUpstreamConnection.Output
    {
        let (principal, id) = try adminConnectionID(input.path.connectionId)
        switch try await upstreamConnections.resume(id: id, by: AuditActor(principal)) {
        case .resumed(let record):
            logger.notice(
                "upstream connection resumed", metadata: ["connection": "\(record.name)", "by": "\(principal.actor)"])
            return .ok(.init(body: .json(Self.schema(record))))
        case .notPaused:
            throw APIProblem.conflict("The upstream connection is active; only a paused connection can be resumed.")
        case .notFound:
            throw Self.noConnection(id)
        }
    }

    package func rotateUpstreamCallbackToken(_ input: Operations.RotateUpstreamCallbackToken.Input) async throws
        -> Operations.RotateUpstreamCallbackToken.Output
    {
        let (principal, id) = try adminConnectionID(input.path.connectionId)
        guard let record = try await upstreamConnections.rotateCallbackToken(id: id, by: AuditActor(principal)) else {
            throw Self.noConnection(id)
        }
        // The token is a secret: the log names the connection and when the old one stops, never either token.
        logger.notice(
            "upstream callback token rotated",
            metadata: [
                "connection": "\(record.name)", "by": "\(principal.actor)",
                "previous_until": "\(record.previousCallbackTokenUntil.map { $0.formatted(.iso8601) } ?? "")",
            ])
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func checkUpstreamConnection(_ input: Operations.CheckUpstreamConnection.Input) async throws
        -> Operations.CheckUpstreamConnection.Output
    {
        let (_, id) = try adminConnectionID(input.path.connectionId)
        guard let connection = try await upstreamConnections.connection(id: id) else { throw Self.noConnection(id) }
        let checkedAt = Date()
        let started = ContinuousClock.now
        var result = Components.Schemas.UpstreamCheck(
            connectionId: id.apiString, ok: false, checkedAt: checkedAt, durationMs: 0)
        do {
            let credits = try await upstreamClients.client(for: connection).credits()
            result.ok = true
            result.credits = GatewayAnswer.credits(credits)
        } catch let failure as UpstreamCredentialCipher.Failure {
            result.error = .init(kind: .credentialsUnavailable, message: failure.description)
        } catch let error as Gateway1601Error {
            result.error = Self.schema(error)
        }
        let elapsed = ContinuousClock.now - started
        result.durationMs = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        logger.info(
            "upstream connection checked",
            metadata: [
                "connection": "\(connection.record.name)", "ok": "\(result.ok)",
                "error": "\(result.error?.message ?? "")",
            ])
        return .ok(.init(body: .json(result)))
    }

    // MARK: - The default and assignments

    package func getDefaultUpstreamConnection(_ input: Operations.GetDefaultUpstreamConnection.Input) async throws
        -> Operations.GetDefaultUpstreamConnection.Output
    {
        _ = try Access.require(.admin)
        return .ok(
            .init(body: .json(.init(connection: try await upstreamConnections.defaultConnection().map(Self.schema)))))
    }

    package func setDefaultUpstreamConnection(_ input: Operations.SetDefaultUpstreamConnection.Input) async throws
        -> Operations.SetDefaultUpstreamConnection.Output
    {
        let principal = try Access.require(.admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let connectionID = try await existingConnection(body.connectionId)
        let record = try await upstreamConnections.setDefault(connectionID: connectionID, by: AuditActor(principal))
        return .ok(.init(body: .json(.init(connection: record.map(Self.schema)))))
    }

    package func clearDefaultUpstreamConnection(_ input: Operations.ClearDefaultUpstreamConnection.Input) async throws
        -> Operations.ClearDefaultUpstreamConnection.Output
    {
        let principal = try Access.require(.admin)
        _ = try await upstreamConnections.setDefault(connectionID: nil, by: AuditActor(principal))
        logger.warning("no default upstream connection any more", metadata: ["by": "\(principal.actor)"])
        return .ok(.init(body: .json(.init(connection: nil))))
    }

    package func getResellerUpstreamConnection(_ input: Operations.GetResellerUpstreamConnection.Input) async throws
        -> Operations.GetResellerUpstreamConnection.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        _ = try Access.requireReseller(id, roles: .admin, .reseller)
        guard let record = try await upstreamConnections.assignment(resellerID: id) else {
            throw APIProblem.notFound("No reseller \(id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func assignResellerUpstreamConnection(_ input: Operations.AssignResellerUpstreamConnection.Input)
        async throws -> Operations.AssignResellerUpstreamConnection.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        guard try await resellers.find(id: id) != nil else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        let connectionID = try await existingConnection(body.connectionId)
        guard
            let record = try await upstreamConnections.assign(
                resellerID: id, connectionID: connectionID, by: AuditActor(principal))
        else {
            throw APIProblem.notFound("No reseller \(id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func unassignResellerUpstreamConnection(_ input: Operations.UnassignResellerUpstreamConnection.Input)
        async throws -> Operations.UnassignResellerUpstreamConnection.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        guard try await resellers.find(id: id) != nil,
            let record = try await upstreamConnections.assign(
                resellerID: id, connectionID: nil, by: AuditActor(principal))
        else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    // MARK: - Helpers

    /// The admin and the connection id of a path; to anyone else every connection is unknown (404, never 403).
    func adminConnectionID(_ text: String) throws -> (Principal, UUID) {
        let principal = try Access.principal()
        let id = try pathID(text, "upstream connection")
        guard principal.role == .admin else { throw Self.noConnection(id) }
        return (principal, id)
    }

    private static func noConnection(_ id: UUID) -> APIProblem {
        APIProblem.notFound("No upstream connection \(id.apiString).")
    }

    /// The id of an existing connection named in a body's `connectionId`, or 422.
    private func existingConnection(_ text: String) async throws -> UUID {
        guard let id = UUID(uuidString: text), try await upstreamConnections.find(id: id) != nil else {
            throw APIProblem.validation([.init(field: "/connectionId", message: "is not an upstream connection")])
        }
        return id
    }

    /// `base` with the given fields validated and laid over it; 422 naming every invalid field.
    package static func upstreamSettings(
        base: UpstreamConnectionSettings, name: String?, baseUrl: String?, username: String?, password: String?,
        segmentation: Components.Schemas.UpstreamSegmentationInput?, concurrency: Int32?, rateLimitPerSecond: Int32?,
        requestTimeoutMs: Int32?,
        singlePartCountries: [String]? = nil
    ) throws -> UpstreamConnectionSettings {
        var validator = Validator()
        var settings = base
        if let name, let value = validator.text(name, field: "/name", maximum: 100) { settings.name = value }
        if let baseUrl, let value = validator.upstreamBaseURL(baseUrl, field: "/baseUrl") { settings.baseURL = value }
        if let username, let value = validator.text(username, field: "/username", maximum: 200) {
            settings.username = value
        }
        if let password {
            if !(1...200).contains(password.unicodeScalars.count) {
                validator.fail("/password", "must be 1 to 200 characters")
            } else if password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                validator.fail("/password", "must not contain control characters")
            } else {
                settings.password = password
            }
        }
        if let segmentation {
            var policy = settings.segmentation
            let fields: [(String, Int32?, ClosedRange<Int>, WritableKeyPath<SegmentationPolicy, Int>)] = [
                ("gsmSinglePart", segmentation.gsmSinglePart, 2...160, \.gsmSinglePart),
                ("gsmConcatenatedPart", segmentation.gsmConcatenatedPart, 2...153, \.gsmConcatenatedPart),
                ("ucs2SinglePart", segmentation.ucs2SinglePart, 2...70, \.ucs2SinglePart),
                ("ucs2ConcatenatedPart", segmentation.ucs2ConcatenatedPart, 2...67, \.ucs2ConcatenatedPart),
                ("maximumParts", segmentation.maximumParts, 1...255, \.maximumParts),
            ]
            var valid = true
            for (field, value, range, path) in fields {
                guard let value else { continue }
                if let value = validator.integer(value, field: "/segmentation/\(field)", range: range) {
                    policy[keyPath: path] = value
                } else {
                    valid = false
                }
            }
            if valid {
                if policy.gsmConcatenatedPart > policy.gsmSinglePart {
                    validator.fail(
                        "/segmentation/gsmConcatenatedPart",
                        "must not be larger than gsmSinglePart (\(policy.gsmSinglePart))")
                }
                if policy.ucs2ConcatenatedPart > policy.ucs2SinglePart {
                    validator.fail(
                        "/segmentation/ucs2ConcatenatedPart",
                        "must not be larger than ucs2SinglePart (\(policy.ucs2SinglePart))")
                }
            }
            settings.segmentation = policy
        }
        if let concurrency, let value = validator.integer(concurrency, field: "/concurrency", range: 1...64) {
            settings.concurrency = value
        }
        if let rateLimitPerSecond,
            let value = validator.integer(rateLimitPerSecond, field: "/rateLimitPerSecond", range: 1...10_000)
        {
            settings.rateLimitPerSecond = value
        }
        if let requestTimeoutMs,
            let value = validator.integer(requestTimeoutMs, field: "/requestTimeoutMs", range: 1_000...120_000)
        {
            settings.requestTimeoutMilliseconds = value
        }
        if let singlePartCountries {
            if singlePartCountries.count > 1_000 {
                validator.fail("/singlePartCountries", "must have at most 1000 calling codes")
            }
            for (index, code) in singlePartCountries.enumerated() where CallingCode.lookup(code) == nil {
                validator.fail("/singlePartCountries/\(index)", "\(code.prefix(20)) is not a calling code")
            }
            settings.singlePartCountries = Array(Set(singlePartCountries)).sorted()
        }
        try validator.check()
        return settings
    }

    // MARK: - Schemas

    package static func schema(_ record: UpstreamConnectionRecord) -> Components.Schemas.UpstreamConnection {
        .init(
            id: record.id.apiString, name: record.name, baseUrl: record.baseURL, username: record.username,
            passwordEncrypted: record.passwordEncrypted, passwordChangedAt: record.passwordChangedAt,
            segmentation: .init(
                gsmSinglePart: Int32(record.gsmSinglePart), gsmConcatenatedPart: Int32(record.gsmConcatenatedPart),
                ucs2SinglePart: Int32(record.ucs2SinglePart), ucs2ConcatenatedPart: Int32(record.ucs2ConcatenatedPart),
                maximumParts: Int32(record.maximumParts)),
            concurrency: Int32(record.concurrency), rateLimitPerSecond: Int32(record.rateLimitPerSecond),
            requestTimeoutMs: Int32(record.requestTimeoutMilliseconds), singlePartCountries: record.singlePartCountries,
            callbackPath: "/callbacks/1601/\(record.callbackToken)",
            previousCallbackPathValidUntil: record.previousCallbackTokenUntil,
            status: .init(rawValue: record.status.rawValue)!,
            pauseReason: record.pauseReason, pauseGatewayCode: record.pauseCode.map { Int32($0) },
            pausedAt: record.pausedAt,
            pausedBy: record.pausedBy, isDefault: record.isDefault, assignedResellers: Int32(record.assignedResellers),
            createdBy: record.createdBy, createdAt: record.createdAt, updatedAt: record.updatedAt)
    }

    package static func schema(_ record: UpstreamAssignmentRecord) -> Components.Schemas.ResellerUpstreamConnection {
        .init(
            resellerId: record.resellerID.apiString, source: .init(rawValue: record.source.rawValue)!,
            connection: record.connection.map {
                .init(id: $0.id.apiString, name: $0.name, status: .init(rawValue: $0.status.rawValue)!)
            })
    }

    package static func schema(_ error: Gateway1601Error) -> Components.Schemas.UpstreamCheckError {
        var result = Components.Schemas.UpstreamCheckError(kind: .gateway, message: error.description)
        switch error {
        case .gateway(let code):
            result.gatewayCode = Int32(code.rawValue)
            result.message = "ERROR \(code.rawValue): \(code.meaning)"
        case .timeout: result.kind = .timeout
        case .connectionFailed: result.kind = .connectionFailed
        case .connectionLost: result.kind = .connectionLost
        case .httpStatus(let status):
            result.kind = .httpStatus
            result.httpStatus = Int32(status)
        case .malformedAnswer: result.kind = .malformedAnswer
        case .invalidRequest: result.kind = .invalidRequest
        case .invalidConfiguration: result.kind = .invalidConfiguration
        }
        result.disposition =
            switch error.disposition {
            case .retry: .retry
            case .failMessage: .failMessage
            case .pauseConnection: .pauseConnection
            }
        return result
    }
}
