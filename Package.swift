// swift-tools-version: 6.2
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "knob",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "knob", targets: ["knob"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        // Suggestion algorithms: pure Swift, no I/O.
        .target(name: "Algorithms", path: "algorithms", swiftSettings: upcoming),
        // The SQLite store: schema, migrations, typed transactions.
        .target(
            name: "Store",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")],
            path: "db",
            swiftSettings: upcoming
        ),
        // posix_spawn extensions (working directory, closing inherited descriptors).
        .target(name: "CSpawn"),
        // The engine: spec, scraper, runner, controller.
        .target(
            name: "Knob",
            dependencies: ["Algorithms", "Store", "CSpawn", "Yams"],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "knob",
            dependencies: ["Knob", "Store", "Algorithms", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: upcoming
        ),
        // Benchmarks of the suggesters (not tests): `swift run -c release knob-bench`.
        .executableTarget(name: "knob-bench", dependencies: ["Algorithms"], path: "bench/swift", swiftSettings: upcoming),
        .testTarget(name: "AlgorithmsTests", dependencies: ["Algorithms"], swiftSettings: upcoming),
        .testTarget(name: "StoreTests", dependencies: ["Store"], swiftSettings: upcoming),
        .testTarget(name: "KnobTests", dependencies: ["Knob", "Store", "Algorithms"], swiftSettings: upcoming),
        // Drives the built `knob` executable as a user would.
        .testTarget(name: "EndToEndTests", dependencies: ["Knob", "Store", "knob"], swiftSettings: upcoming),
    ]
)
