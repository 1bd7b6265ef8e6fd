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
        // Plugins: each a dynamic library the host dlopens by path.
        .library(name: "FerryFile", type: .dynamic, targets: ["FileConnector"]),
        .library(name: "FerryGenerate", type: .dynamic, targets: ["GenerateSource"]),
        .library(name: "FerryBlackhole", type: .dynamic, targets: ["BlackholeSink"]),
        .library(name: "FerryPassthrough", type: .dynamic, targets: ["PassthroughTransform"]),
        .library(name: "FerryMap", type: .dynamic, targets: ["MapTransform"]),
        .library(name: "FerryMongo", type: .dynamic, targets: ["MongoConnector"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // The ABI: the only thing a plugin must see.
        .target(name: "CFerryPlugin", path: "Sources/CFerryPlugin"),
        // libbson, for extended JSON and validation.
        .systemLibrary(
            name: "CLibBSON", path: "Sources/CLibBSON", pkgConfig: "libbson-1.0",
            providers: [.apt(["libbson-dev"])]),
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
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),

        .target(
            name: "FileConnector", dependencies: ["FerryPluginKit"], path: "Plugins/File",
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
            name: "MongoConnector", dependencies: ["FerryPluginKit", "CLibMongoc"], path: "Plugins/Mongo", exclude: ["README.md"],
            swiftSettings: swiftSettings, linkerSettings: pluginLinkerSettings()),

        // Tests load plugins by path with dlopen; they never link a plugin target.
        .testTarget(
            name: "FerryPluginKitTests", dependencies: ["FerryPluginKit"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryCoreTests",
            dependencies: ["FerryCore", "FerryPluginKit", "CFerryPlugin"],
            swiftSettings: swiftSettings),
    ]
)
