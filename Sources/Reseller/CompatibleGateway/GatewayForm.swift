import Gateway1601
import HTTPTypes
import Hummingbird
import NIOCore

/// The parameters of one 1601-style request: the query's, then the form body's (so the query wins for a name given
/// in both), each percent-decoded exactly once and kept only when it is valid UTF-8 (``FormEncoding/decodeStrictly(_:)``).
struct GatewayForm: Sendable {
    enum Value: Sendable, Equatable {
        case absent
        /// Present, but not valid percent-encoded UTF-8: refused by the check the parameter belongs to, never used.
        case malformed
        case text(String)
    }

    private var pairs: [FormEncoding.StrictPair]

    init(query: String?, body: [UInt8]?) {
        pairs = FormEncoding.decodeStrictly(Array((query ?? "").utf8)) + (body.map { FormEncoding.decodeStrictly($0) } ?? [])
    }

    /// The first parameter called `name`. Names are compared exactly, as the upstream's PHP does.
    subscript(name: String) -> Value {
        guard let pair = pairs.first(where: { $0.name == name }) else { return .absent }
        return pair.value.map(Value.text) ?? .malformed
    }

    /// The value, when present and readable.
    func text(_ name: String) -> String? {
        if case .text(let value) = self[name] { return value }
        return nil
    }

    /// Whether the text is empty or absent: the upstream's "is empty" (100, 101, 102, 103).
    func isEmpty(_ name: String) -> Bool {
        switch self[name] {
        case .absent: true
        case .malformed: false
        case .text(let value): value.isEmpty
        }
    }

    /// A `ja` flag (`yes` too, as the document once writes it), case-insensitively.
    func isYes(_ name: String) -> Bool {
        guard let value = text(name)?.lowercased() else { return false }
        return value == "ja" || value == "yes"
    }

    /// Reads a request: the query, and for a POST its `application/x-www-form-urlencoded` body (up to `maximumBodyBytes`).
    static func read(_ request: Request, maximumBodyBytes: Int) async throws(GatewayReply) -> GatewayForm {
        var body: [UInt8]?
        if request.method == .post {
            if let type = request.headers[.contentType],
               !type.lowercased().hasPrefix("application/x-www-form-urlencoded") {
                throw GatewayReply(
                    "send the parameters in the query or as an application/x-www-form-urlencoded body", status: .unsupportedMediaType)
            }
            do {
                var buffer = try await request.body.collect(upTo: maximumBodyBytes)
                body = buffer.readBytes(length: buffer.readableBytes)
            } catch is NIOTooManyBytesError {
                throw GatewayReply("the body is larger than \(maximumBodyBytes) bytes", status: .contentTooLarge)
            } catch {
                throw GatewayReply("the body could not be read", status: .badRequest)
            }
        }
        return GatewayForm(query: request.uri.query, body: body)
    }
}
