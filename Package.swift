// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "sms-reseller",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sms-reseller", targets: ["sms-reseller"]),
        .executable(name: "gateway1601-sim", targets: ["gateway1601-sim"]),
        .executable(name: "pg-pool-bench", targets: ["pg-pool-bench"]),
        .executable(name: "ledger-bench", targets: ["ledger-bench"]),
        .library(name: "PostgresLibpq", targets: ["PostgresLibpq"]),
        .library(name: "Gateway1601", targets: ["Gateway1601"]),
        .library(name: "Gateway1601Simulator", targets: ["Gateway1601Simulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP only: without the gRPC trait the build leaves out grpc-swift.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // libpq, found through pkg-config; `apt-get install libpq-dev` provides it.
        .systemLibrary(
            name: "CLibpq",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // zlib, for gzip-compressed exports; `apt-get install zlib1g-dev` provides it.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // libharu, for the PDF of invoices and credit notes; `apt-get install libhpdf-dev` provides it. It ships no
        // pkg-config file, so the module map links `hpdf` itself.
        .systemLibrary(
            name: "CHaru",
            providers: [.apt(["libhpdf-dev"])]
        ),
        .target(
            name: "PostgresLibpq",
            dependencies: [
                "CLibpq",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "SMSCore", swiftSettings: swiftSettings),
        .target(
            name: "Gateway1601",
            dependencies: [
                "SMSCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            exclude: ["PROTOCOL.md"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Gateway1601Simulator",
            dependencies: [
                "Gateway1601",
                "SMSCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gateway1601-sim",
            dependencies: [
                "Gateway1601Simulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Generated server types and handler protocol; `openapi.yaml` here is a symlink to the root spec.
        .target(
            name: "ResellerAPI",
            dependencies: [
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime")
            ],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // The application, one target per concern. Imports point one way: ResellerApp → CompatibleGateway →
        // Messaging → {Webhooks, Contacts, Pricing, Ledger} → ResellerCore → {PostgresLibpq, SMSCore, Gateway1601}.
        // Only ResellerApp and CompatibleGateway know HTTP; SQL lives in the repositories of each concern.
        .target(
            name: "ResellerCore",
            dependencies: [
                "PostgresLibpq",
                "SMSCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Ledger",
            dependencies: [
                "ResellerCore", "PostgresLibpq", "SMSCore", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Pricing",
            dependencies: ["ResellerCore", "PostgresLibpq", "SMSCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Contacts",
            dependencies: ["ResellerCore", "PostgresLibpq", "SMSCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Webhooks",
            dependencies: [
                "ResellerCore",
                "Gateway1601",
                "PostgresLibpq",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Messaging",
            dependencies: [
                "ResellerCore",
                "Ledger",
                "Pricing",
                "Contacts",
                "Webhooks",
                "PostgresLibpq",
                "SMSCore",
                "Gateway1601",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Finance: upstream purchases, usage and balance reports, charts of accounts, streamed exports.
        .target(
            name: "Finance",
            dependencies: [
                "ResellerCore",
                "Ledger",
                "PostgresLibpq",
                "SMSCore",
                "Gateway1601",
                "CZlib",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Invoicing: billing profiles, invoices and credit notes with gap-free numbers, the monthly run, renderings.
        .target(
            name: "Invoicing",
            dependencies: [
                "ResellerCore",
                "Ledger",
                "PostgresLibpq",
                "SMSCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The PDF of an invoice or a credit note (libharu); no HTTP, no database.
        .target(
            name: "InvoicePDF",
            dependencies: ["Invoicing", "CHaru"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CompatibleGateway",
            dependencies: [
                "ResellerCore",
                "Ledger",
                "Contacts",
                "Messaging",
                "PostgresLibpq",
                "SMSCore",
                "Gateway1601",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Thin: router, generated handlers, middleware, problem+json, configuration, wiring of services.
        .target(
            name: "ResellerApp",
            dependencies: [
                "ResellerAPI",
                "ResellerCore",
                "Ledger",
                "Pricing",
                "Contacts",
                "Webhooks",
                "Messaging",
                "Finance",
                "Invoicing",
                "InvoicePDF",
                "CompatibleGateway",
                "PostgresLibpq",
                "SMSCore",
                "Gateway1601",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "sms-reseller",
            dependencies: [
                "ResellerApp",
                "ResellerCore",
                "Ledger",
                "Messaging",
                "Webhooks",
                "Finance",
                "Invoicing",
                "PostgresLibpq",
                "Gateway1601",
                "Gateway1601Simulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pg-pool-bench",
            dependencies: [
                "PostgresLibpq",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ledger-bench",
            dependencies: [
                "ResellerCore",
                "Ledger",
                "PostgresLibpq",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Input fuzzing (docs/testing.md, "Input fuzzing"). FuzzTargets holds the target functions and compiles the
        // parsers it fuzzes from their own files (symlinks in Sources/FuzzTargets/Parsers) on top of SMSCore only, so
        // the sanitized build does not rebuild NIO, AsyncHTTPClient, swift-crypto and BoringSSL with instrumentation.
        // `sms-fuzz` runs the targets under libFuzzer when built with `-DFUZZING -sanitize=fuzzer,address`
        // (scripts/fuzz.sh) and replays input files otherwise, so normal builds and CI build and link it too.
        // CLibFuzzer only declares libFuzzer's driver for Swift.
        .target(name: "CLibFuzzer"),
        .target(
            name: "FuzzTargets",
            dependencies: ["SMSCore"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "sms-fuzz",
            dependencies: ["FuzzTargets", "CLibFuzzer"],
            swiftSettings: swiftSettings
        ),
        // Services run for the length of a test (the simulator, dispatchers), stopped gracefully.
        .target(
            name: "ServiceTestSupport",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ServiceTestSupport",
            swiftSettings: swiftSettings
        ),
        // Throwaway databases for test suites (creates and drops one database per test).
        .target(
            name: "PostgresTestSupport",
            dependencies: ["PostgresLibpq", .product(name: "Logging", package: "swift-log")],
            path: "Tests/PostgresTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresLibpqTests",
            dependencies: [
                "PostgresLibpq",
                "PostgresTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SMSCoreTests", dependencies: ["SMSCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "InvoicePDFTests",
            dependencies: ["InvoicePDF", "Invoicing", "CHaru"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "Gateway1601Tests",
            dependencies: [
                "Gateway1601",
                "Gateway1601Simulator",
                "ServiceTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ResellerTests",
            dependencies: [
                "ResellerApp",
                "ResellerCore",
                "Ledger",
                "Pricing",
                "Contacts",
                "Webhooks",
                "Messaging",
                "Finance",
                "Invoicing",
                "InvoicePDF",
                "CompatibleGateway",
                "ResellerAPI",
                "PostgresLibpq",
                "Gateway1601",
                "Gateway1601Simulator",
                .product(name: "Hummingbird", package: "hummingbird"),
                "SMSCore",
                "FuzzTargets",
                "PostgresTestSupport",
                "ServiceTestSupport",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
