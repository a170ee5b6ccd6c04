// swift-tools-version:5.9
// The Vigil Swift package. Build the XCFramework and the generated Swift
// first: ./build-xcframework.sh (on a Mac).
import PackageDescription

let package = Package(
    name: "Vigil",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Vigil", targets: ["Vigil"]),
    ],
    targets: [
        // The Rust core: static libraries for device and simulator, with the
        // uniffi C headers and module map (modules VigilFFI_ffi, VigilCoreFFI_ffi and
        // VigilModelFFI_ffi, named in bindings/, core/ and core/model/uniffi.toml).
        .binaryTarget(name: "VigilFFI_ffi", path: "VigilFFI_ffi.xcframework"),
        // The generated bindings (Sources/Vigil/Generated) and the Swift layer.
        .target(name: "Vigil", dependencies: ["VigilFFI_ffi"], path: "Sources/Vigil"),
        .testTarget(name: "VigilTests", dependencies: ["Vigil"], path: "Tests/VigilTests"),
    ]
)
