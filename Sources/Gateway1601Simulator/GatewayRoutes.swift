import Foundation
import Gateway1601
import Hummingbird
import NIOCore
import ServiceLifecycle

/// The injected fault chosen for one gateway call.
enum InjectedFault {
    case drop
    case hang(Duration)
    case answer(GatewayErrorCode)
    /// Carried out, then closed without the answer.
    case loseAnswer
}

extension GatewaySimulator {
    /// The largest request body read.
    static let maximumBodyBytes = 1 << 20

    func addGatewayRoutes(to router: Router<SimulatorRequestContext>) {
        for path in [GatewayCall.gatewayPath, GatewayCall.reportPath] {
            router.get(RouterPath(path)) { request, context in try await self.gatewayCall(request, context: context) }
            router.post(RouterPath(path)) { request, context in try await self.gatewayCall(request, context: context) }
        }
    }

    /// One call to `/module/…`: decode, inject faults, let the engine answer, record everything.
    func gatewayCall(_ request: Request, context: SimulatorRequestContext) async throws -> Response {
        var request = request
        let receivedAt = Date()
        let rawQuery = request.uri.query
        var rawBody: String?
        if request.method == .post {
            rawBody = String(buffer: try await request.collectBody(upTo: Self.maximumBodyBytes))
        }
        let parameters = FormEncoding.decode(rawQuery ?? "") + FormEncoding.decode(rawBody ?? "")
        let path = request.uri.path
        func record(_ outcome: ReceivedRequest.Outcome, _ answer: String?) {
            engine.update { state in
                state.requestSequence += 1
                state.requests.append(
                    ReceivedRequest(
                        sequence: state.requestSequence, receivedAt: receivedAt, method: request.method.rawValue,
                        path: path, rawQuery: rawQuery, rawBody: rawBody, parameters: parameters, outcome: outcome,
                        answer: answer
                    )
                )
                if state.requests.count > SimulatorEngine.logLimit { state.requests.removeFirst() }
            }
        }

        let faults = engine.read(\.faults)
        let latency = engine.random.integer(
            in: min(
                faults.latencyMinimumMilliseconds, faults.latencyMaximumMilliseconds)...max(
                    faults.latencyMinimumMilliseconds, faults.latencyMaximumMilliseconds)
        )
        if latency > 0 { try await Task.sleep(for: .milliseconds(latency)) }

        let answer: EngineAnswer
        let fault = injectedFault(faults)
        switch fault {
        case .drop?:
            record(.dropped, nil)
            return try await closeUnanswered(context)
        case .hang(let duration)?:
            record(.hung, nil)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
            return try await closeUnanswered(context)
        case .answer(let code)?:
            answer = EngineAnswer(text: GatewayAnswer.error(code))
        case nil, .loseAnswer?:
            if faults.inMaintenance(at: receivedAt) {
                answer = EngineAnswer(text: GatewayAnswer.error(.maintenance))
            } else if path == GatewayCall.reportPath {
                answer = engine.deliveryStatus(parameters)
            } else {
                answer = engine.gateway(parameters, now: receivedAt)
            }
        }
        worker.enqueue(answer.sent, epoch: answer.epoch)
        if case .loseAnswer? = fault {
            record(.answerLost, answer.text)
            return try await closeUnanswered(context)
        }
        record(.answered, answer.text)
        return Response(
            status: .init(code: answer.httpStatus),
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: answer.text))
        )
    }

    /// One draw over the cumulative rates: drop, hang, 120, 150, lost answer.
    private func injectedFault(_ faults: FaultConfiguration) -> InjectedFault? {
        let rates =
            faults.dropRate + faults.hangRate + faults.gatewayErrorRate + faults.maintenanceErrorRate
            + faults.answerLossRate
        guard rates > 0 else { return nil }
        var draw = engine.random.unit()
        let choices: [(Double, InjectedFault)] = [
            (faults.dropRate, .drop),
            (faults.hangRate, .hang(.milliseconds(faults.hangMilliseconds))),
            (faults.gatewayErrorRate, .answer(.gatewayProblem)),
            (faults.maintenanceErrorRate, .answer(.maintenance)),
            (faults.answerLossRate, .loseAnswer),
        ]
        for (rate, fault) in choices {
            if draw < rate { return fault }
            draw -= rate
        }
        return nil
    }

    /// Closes the connection without writing anything; the response returned is never sent.
    private func closeUnanswered(_ context: SimulatorRequestContext) async throws -> Response {
        try? await context.channel.close()
        return Response(status: .ok)
    }
}
