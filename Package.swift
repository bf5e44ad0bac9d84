// swift-tools-version:5.9
// codeshare: a CPython 3.11 extension module written in Embedded Swift.
//
// The extension (`codeshare._core`) is built by setup.py with
//   CODESHARE_PYTHON_INCLUDE=<sysconfig include dir> swift build -c release
// `swift test` builds the pure-Swift archive format (CodeShareFormat) without
// Embedded mode, so it runs with XCTest and needs no Python at all.
import PackageDescription
import Foundation

let environment = ProcessInfo.processInfo.environment
let packageDirectory = Context.packageDirectory
let pythonInclude = environment["CODESHARE_PYTHON_INCLUDE"] ?? "/usr/include/python3.11"
// Embedded Swift keeps the .so free of libswiftCore (import cost ~0 ms);
// tests need the full runtime for XCTest.
let embedded = environment["CODESHARE_SWIFT_TEST"] == nil

let embeddedSettings: [SwiftSetting] = embedded
    ? [.enableExperimentalFeature("Embedded"), .unsafeFlags(["-wmo", "-Xcc", "-fPIC"])]
    : []

var targets: [Target] = [
    .target(name: "CodeShareFormat", swiftSettings: embeddedSettings),
    .testTarget(name: "CodeShareFormatTests", dependencies: ["CodeShareFormat"]),
]
var products: [Product] = []
if embedded {
    targets += [
        .target(
            name: "CPythonShim",
            cSettings: [.unsafeFlags(["-I", pythonInclude, "-fPIC"])]),
        .target(
            name: "CodeShare",
            dependencies: ["CPythonShim", "CodeShareFormat"],
            exclude: ["exports.map"],
            swiftSettings: embeddedSettings + [.unsafeFlags(["-Xcc", "-I", "-Xcc", pythonInclude])],
            linkerSettings: [.unsafeFlags([
                "-Xlinker", "--as-needed", "-Xlinker", "--gc-sections", "-Xlinker", "-s",
                "-Xlinker", "--version-script=\(packageDirectory)/Sources/CodeShare/exports.map",
            ])]),
    ]
    products.append(.library(name: "CodeShare", type: .dynamic, targets: ["CodeShare"]))
}

let package = Package(name: "codeshare", products: products, targets: targets)
