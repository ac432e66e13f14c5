// swift-tools-version: 6.2
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// knob and knobd link with the toolchain's lld and pack their relative relocations (DT_RELR, glibc 2.36+): the
// loader reads a 10 KB table at each start instead of 1.2 MB of them, and an idle knobd keeps none of it resident.
let packedRelocations: [LinkerSetting] = [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"])]

let package = Package(
    name: "knob",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "knob", targets: ["knob"]),
        .executable(name: "knobd", targets: ["knobd"]),
        .executable(name: "knob-supervise", targets: ["knob-supervise"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", exact: "2.0.1"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // Suggestion algorithms: pure Swift, no I/O. (Named KnobAlgorithms: swift-algorithms, which
        // Hummingbird uses, owns the module name Algorithms.)
        .target(name: "KnobAlgorithms", path: "algorithms", swiftSettings: upcoming),
        // The SQLite store: schema, migrations, typed transactions.
        .target(
            name: "Store",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            path: "db",
            swiftSettings: upcoming
        ),
        // posix_spawn extensions (working directory, closing inherited descriptors).
        .target(name: "CSpawn"),
        // RE2 from Debian's libre2-dev behind a C header: Katib's (Go's) regex syntax for custom
        // metrics formats, matched in linear time.
        .target(name: "RE2Shim", linkerSettings: [.linkedLibrary("re2")]),
        // The engine: spec, scraper, runner, controller.
        .target(
            name: "Knob",
            dependencies: ["KnobAlgorithms", "Store", "CSpawn", "RE2Shim", "Yams", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            // TensorBoard's event records, read with SwiftProtobuf from the code generated from this file.
            exclude: ["Scraper/TensorBoard/tensorboard_event.proto"],
            swiftSettings: upcoming
        ),
        // libcurl (headers from Debian's libcurl4-openssl-dev), loaded on first use: the HTTP client of the CLI
        // and of the Kubernetes API.
        .target(name: "CCurl"),
        // Trials as Kubernetes Pods or Jobs: the API client on libcurl, kubeconfig and in-cluster auth, PodRunner.
        .target(name: "Kubernetes", dependencies: ["Knob", "CCurl", "Yams"], swiftSettings: upcoming),
        // The daemon: HTTP/JSON API, experiment controllers as services.
        .target(
            name: "KnobServer",
            dependencies: [
                "Knob", "Store", "Kubernetes",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["openapi.yaml"],
            // The dashboard's pages, script and style, compiled into knobd.
            resources: [.embedInCode("Dashboard/index.html"), .embedInCode("Dashboard/experiment.html"), .embedInCode("Dashboard/trial.html"),
                        .embedInCode("Dashboard/dashboard.js"), .embedInCode("Dashboard/dashboard.css")],
            swiftSettings: upcoming
        ),
        // What the two executables share: their entry point (with the trial supervisor mode) and Kubernetes flags.
        .target(
            name: "CommandSupport",
            dependencies: ["Knob", "Kubernetes", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: upcoming
        ),
        // The trial supervisor in C: the protocol of `knob __supervise`, started in about a millisecond.
        // LocalRunner uses it when it lies next to knob or knobd.
        // Linked statically, without the Swift runtime (which SwiftPM links into every executable) and without the C
        // library: loading libswiftCore, or the C library finding the processor's features, would cost most of its
        // start time, and this program makes system calls alone.
        .executableTarget(
            name: "knob-supervise",
            cSettings: [.unsafeFlags(["-ffreestanding", "-fno-builtin", "-fno-stack-protector"])],
            linkerSettings: [.unsafeFlags(["-static-executable", "-nostartfiles", "-Xclang-linker", "-nostdlib"])]),
        // The CLI's client of the daemon's API over libcurl.
        .target(name: "KnobClient", dependencies: ["CCurl"], swiftSettings: upcoming),
        .executableTarget(
            name: "knob",
            // KnobServer: `knob run` serves the reports of a Push experiment's trials itself.
            dependencies: ["Knob", "Store", "KnobAlgorithms", "KnobClient", "KnobServer", "Kubernetes", "CommandSupport", "Yams",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: upcoming,
            linkerSettings: packedRelocations
        ),
        .executableTarget(
            name: "knobd",
            dependencies: ["KnobServer", "Knob", "Kubernetes", "CommandSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: upcoming,
            linkerSettings: packedRelocations
        ),
        // Benchmarks of the suggesters (not tests): `swift run -c release knob-bench`.
        // It keeps CMA-ES's replay checkpoints in Knob's state folder, as knob does.
        .executableTarget(name: "knob-bench", dependencies: ["KnobAlgorithms", "Knob", "Store"], path: "bench/swift", swiftSettings: upcoming),
        .testTarget(name: "AlgorithmsTests", dependencies: ["KnobAlgorithms"], swiftSettings: upcoming),
        .testTarget(name: "StoreTests", dependencies: ["Store"], swiftSettings: upcoming),
        .testTarget(name: "KubernetesTests", dependencies: ["Kubernetes", "Knob"], swiftSettings: upcoming),
        .testTarget(name: "KnobTests", dependencies: ["Knob", "Store", "KnobAlgorithms", .product(name: "PropertyBased", package: "swift-property-based")],
                    swiftSettings: upcoming),
        // Drives the built `knob` executable as a user would.
        .testTarget(
            name: "KnobServerTests",
            dependencies: ["KnobServer", "Knob", "Kubernetes", "Store", "Yams", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: upcoming
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["Knob", "Store", "KnobClient", "Kubernetes", "knob", "knobd"], exclude: ["Golden"],
                    swiftSettings: upcoming),
    ]
)
