// swift-tools-version: 5.9
// An app package: open SlimportDemo.swiftpm in Xcode 15+ (or Swift Playgrounds 4.4+) and run on an
// iPhone or the simulator. Copy a slimport bundle into Sources/bundle/ first (docs/apps.md).
import AppleProductTypes
import PackageDescription

let package = Package(
    name: "SlimportDemo",
    platforms: [.iOS("17.0")],
    products: [
        .iOSApplication(
            name: "SlimportDemo",
            targets: ["SlimportDemo"],
            bundleIdentifier: "dev.slimport.demo",
            displayVersion: "0.1.0",
            bundleVersion: "1",
            appIcon: .placeholder(icon: .chatMessage),
            accentColor: .presetColor(.blue),
            supportedDeviceFamilies: [.phone, .pad],
            supportedInterfaceOrientations: [.portrait, .landscapeRight, .landscapeLeft]
        ),
    ],
    dependencies: [.package(path: "../SlimportCore")],
    targets: [
        .executableTarget(
            name: "SlimportDemo",
            dependencies: [.product(name: "SlimportCore", package: "SlimportCore")],
            path: "Sources",
            resources: [.copy("bundle")]
        ),
    ]
)
