import Foundation
import Gateway1601
import Logging
import Messaging
import OpenAPIRuntime
import ResellerAPI

/// The upstream's delivery callbacks: authenticated by the connection's secret token in the path, answered `OK`.
extension APIHandlers {
    package func receiveDeliveryReport(_ input: Operations.ReceiveDeliveryReport.Input) async throws
        -> Operations.ReceiveDeliveryReport.Output
    {
        let token = input.path.token
        guard token.utf8.count == 64,
            token.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
            let connectionID = try await deliveryReports.repository.connection(token: token)
        else { throw APIProblem.notFound("No such callback.") }
        var parameters: [GatewayParameter] = []
        for (name, value) in [
            ("smsid", input.query.smsid), ("datum", input.query.datum), ("status", input.query.status),
            ("referentie", input.query.referentie),
        ] {
            if let value { parameters.append(GatewayParameter(name, value)) }
        }
        let notification: DeliveryNotification
        do {
            notification = try DeliveryNotification(parameters: parameters)
        } catch {
            throw APIProblem.badRequest("Not a delivery notification: \(Self.describe(error)).")
        }
        let report = IncomingReport(
            connectionID: connectionID, smsID: notification.smsID, status: notification.status,
            reportedAt: notification.timestamp.date(),
            reference: notification.reference, source: .callback)
        let outcome = try await deliveryReports.receive(report)
        if outcome == .unmatched {
            logger.warning(
                "delivery report matches no message",
                metadata: ["smsid": "\(report.smsID)", "referentie": "\(report.reference ?? "")"])
        }
        return .ok(.init(body: .plainText(HTTPBody("OK"))))
    }

    package static func describe(_ error: DeliveryNotification.ParseError) -> String {
        switch error {
        case .missingParameter(let name): "\(name) is missing"
        case .invalidSMSID(let value): "smsid \(value.prefix(40).debugDescription) is not an id"
        case .invalidDate(let value): "datum \(value.prefix(40).debugDescription) is not yyyymmddhhmmss"
        case .unknownStatus(let value): "status \(value.prefix(40).debugDescription) is not a delivery status"
        }
    }
}
