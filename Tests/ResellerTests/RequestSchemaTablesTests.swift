import Foundation
import ResellerApp
import Testing

/// `RequestSchemaMiddleware`'s tables against `openapi.yaml`: what it checks is everything of the kind.
@Suite struct RequestSchemaTablesTests {
    @Test func theTablesMatchTheSpecification() throws {
        let spec = try ForeignTenantWalkTests.specification()
        let paths = try #require(spec["paths"] as? [String: Any])
        let schemas = try #require((spec["components"] as? [String: Any])?["schemas"] as? [String: Any])
        func resolve(_ schema: Any?) -> [String: Any] {
            var schema = schema as? [String: Any] ?? [:]
            while let reference = schema["$ref"] as? String {
                schema = schemas[String(reference.split(separator: "/").last!)] as? [String: Any] ?? [:]
            }
            return schema
        }
        var optional: Set<String> = []
        var required: Set<String> = []
        var arrayLimits: [String: [String: Int]] = [:]
        for (_, item) in paths {
            for (_, operation) in item as? [String: Any] ?? [:] {
                guard let operation = operation as? [String: Any], let id = operation["operationId"] as? String,
                    let body = operation["requestBody"] as? [String: Any]
                else { continue }
                let content = body["content"] as? [String: Any] ?? [:]
                // The 1601-compatible forms are not operations of the generated transport.
                guard content.keys.contains(where: { $0.contains("json") || $0.contains("csv") }) else { continue }
                if body["required"] as? Bool == true { required.insert(id) } else { optional.insert(id) }
                for (type, media) in content where type.contains("json") {
                    let schema = resolve((media as? [String: Any])?["schema"])
                    for (property, value) in schema["properties"] as? [String: Any] ?? [:] {
                        if let maximum = resolve(value)["maxItems"] as? Int {
                            arrayLimits[id, default: [:]][property] = maximum
                        }
                    }
                }
            }
        }
        #expect(optional == RequestSchemaMiddleware.optionalBodyOperations)
        #expect(required == RequestSchemaMiddleware.requiredBodyOperations)
        #expect(
            arrayLimits
                == RequestSchemaMiddleware.arrayLimits.merging(
                    RequestSchemaMiddleware.arrayLimitsCheckedByHandlers,
                    uniquingKeysWith: { $0.merging($1) { a, _ in a } }
                ))
        // No schema is nullable, so a null anywhere in a body is outside the contract.
        let text = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("openapi.yaml"), encoding: .utf8)
        #expect(!text.contains("nullable:") && !text.contains("\"null\"") && !text.contains("'null'"))
        #expect(!text.contains(" null]") && !text.contains("[null"))
    }
}
