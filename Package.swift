// swift-tools-version:6.0
import PackageDescription

// One settings list for every Swift target, as Hummingbird does.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

// Each plugin is its own shared object; only the exported entry symbol is visible.
func pluginLinkerSettings() -> [LinkerSetting] {
    [.unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Plugins/plugin.exports"])]
}

let package = Package(
    name: "Ferry",
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
        .library(name: "FerryPluginKit", targets: ["FerryPluginKit"]),
        .library(name: "FerryCore", targets: ["FerryCore"]),
        // For plugin authors' own tests: load a built plugin, feed it, run the conformance checks.
        .library(name: "FerryPluginTesting", targets: ["FerryPluginTesting"]),
        // Plugins: each a dynamic library the host dlopens by path.
        .library(name: "FerryFile", type: .dynamic, targets: ["FileConnector"]),
        .library(name: "FerryGenerate", type: .dynamic, targets: ["GenerateSource"]),
        .library(name: "FerryBlackhole", type: .dynamic, targets: ["BlackholeSink"]),
        .library(name: "FerryPassthrough", type: .dynamic, targets: ["PassthroughTransform"]),
        .library(name: "FerryMap", type: .dynamic, targets: ["MapTransform"]),
        .library(name: "FerryRegexFilter", type: .dynamic, targets: ["RegexFilterTransform"]),
        .library(name: "FerryPostgres", type: .dynamic, targets: ["PostgresConnector"]),
        .library(name: "FerryMongo", type: .dynamic, targets: ["MongoConnector"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The daemon: the libraries Swift server users already run.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The ABI: the only thing a plugin must see.
        .target(name: "CFerryPlugin", path: "Sources/CFerryPlugin"),
        // libbson, for extended JSON and validation.
        .systemLibrary(
            name: "CLibBSON", path: "Sources/CLibBSON", pkgConfig: "libbson-1.0",
            providers: [.apt(["libbson-dev"])]),
        // PCRE2, for the regex filter plugin only.
        .systemLibrary(
            name: "CPCRE2", path: "Sources/CPCRE2", pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]),
        // libpq, for the PostgreSQL plugin only; the engine never links it.
        .systemLibrary(
            name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        // libmongoc, for the MongoDB plugin only.
        .systemLibrary(
            name: "CLibMongoc", path: "Sources/CLibMongoc", pkgConfig: "libmongoc-1.0",
            providers: [.apt(["libmongoc-dev"])]),
        // Host-only helpers (atomics on the cancel flag) the ABI header must not carry.
        .target(name: "CFerryHost", path: "Sources/CFerryHost"),

        .target(
            name: "FerryPluginKit",
            dependencies: ["CFerryPlugin", "CLibBSON"],
            swiftSettings: swiftSettings),
        .target(
            name: "FerryCore",
            dependencies: [
                "FerryPluginKit", "CFerryPlugin", "CFerryHost",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "FerryPluginTesting",
            dependencies: ["FerryCore", "FerryPluginKit", "CFerryPlugin"],
            swiftSettings: swiftSettings),
        // `ferry serve`: HTTP API, schedules, metrics, graceful shutdown.
        // Checkpoints and run locks shared by replicas, in PostgreSQL. PostgresNIO
        // (pure Swift), so the engine and CLI never link libpq: only the
        // PostgreSQL plugin does.
        .target(
            name: "FerryPostgresStore",
            dependencies: [
                "FerryCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "FerryServer",
            dependencies: [
                "FerryCore", "FerryPostgresStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryCore", "FerryPluginTesting", "FerryServer", "FerryPostgresStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),

        .target(
            name: "FileConnector", dependencies: ["FerryPluginKit", "CLibBSON"], path: "Plugins/File", exclude: ["README.md"],
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),
        .target(
            name: "GenerateSource", dependencies: ["FerryPluginKit"], path: "Plugins/Generate",
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),
        .target(
            name: "BlackholeSink", dependencies: ["FerryPluginKit"], path: "Plugins/Blackhole",
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),
        .target(
            name: "PassthroughTransform", dependencies: ["FerryPluginKit"], path: "Plugins/Passthrough",
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),

        .target(
            name: "MapTransform", dependencies: ["FerryPluginKit", "CLibBSON"], path: "Plugins/Map", exclude: ["README.md"],
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),
        .target(
            name: "RegexFilterTransform", dependencies: ["FerryPluginKit", "CPCRE2", "CLibBSON"], path: "Plugins/RegexFilter",
            exclude: ["README.md"], swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),
        .target(
            name: "PostgresConnector", dependencies: ["FerryPluginKit", "CLibPQ"], path: "Plugins/Postgres",
            exclude: ["README.md"],
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),
        .target(
            name: "MongoConnector", dependencies: ["FerryPluginKit", "CLibMongoc"], path: "Plugins/Mongo", exclude: ["README.md"],
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),

        // Tests load plugins by path with dlopen; they never link a plugin target.
        .testTarget(
            name: "FerryPluginKitTests", dependencies: ["FerryPluginKit"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryCoreTests",
            dependencies: ["FerryCore", "FerryPluginKit", "FerryPluginTesting", "FerryServer", "FerryPostgresStore", "CFerryPlugin"],
            swiftSettings: swiftSettings),
    ]
)
