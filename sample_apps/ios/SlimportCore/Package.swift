// swift-tools-version:5.9
// The platform-free core of the iOS sample app: manifest, tokenizers (WordPiece, BPE, Unigram), input building,
// golden self-test and decoding. `swift test` runs its XCTest suite against a bundle folder given
// by the SLIMPORT_BUNDLE environment variable (see docs/apps.md).
import PackageDescription

let package = Package(
    name: "SlimportCore",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [.library(name: "SlimportCore", targets: ["SlimportCore"])],
    targets: [
        .target(name: "SlimportCore"),
        .testTarget(name: "SlimportCoreTests", dependencies: ["SlimportCore"]),
    ]
)
