import Foundation

/// One tensor of an artifact's contract. Shapes hold ints, or strings such as "2..512" for flexible axes.
public struct TensorSpec: Decodable, Equatable {
    public let name: String
    public let dtype: String
    public let shape: [ShapeDim]

    enum CodingKeys: String, CodingKey {
        case name, dtype, shape
    }
}

/// A fixed size or a flexible range ("2..512").
public enum ShapeDim: Decodable, Equatable {
    case fixed(Int)
    case flexible(String)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .fixed(value)
        } else {
            self = .flexible(try container.decode(String.self))
        }
    }
}

/// The device profile an artifact was built and judged for (the fields an app needs).
public struct Profile: Decodable, Equatable {
    public let name: String
    public let batch: Int
    public let seqLen: Int
    public let staticShape: Bool
    public let inputDtype: String

    enum CodingKeys: String, CodingKey {
        case name, batch
        case seqLen = "seq_len"
        case staticShape = "static_shape"
        case inputDtype = "input_dtype"
    }
}

/// A file of the bundle with its hash.
public struct BundleFile: Decodable, Equatable {
    public let path: String
    public let sha256: String
}

/// One artifact of a bundle as `manifest.json` describes it. Paths are relative to the bundle.
public struct ArtifactEntry: Decodable {
    public let model: String
    public let task: String
    public let target: String
    public let format: String
    public let folder: String
    public let modelFile: String
    public let labels: [String]?
    public let profile: Profile
    public let inputs: [TensorSpec]
    public let outputs: [TensorSpec]
    public let tokenizerFiles: [BundleFile]
    public let golden: String
    public let passed: Bool

    enum CodingKeys: String, CodingKey {
        case model, task, target, format, folder, labels, profile, inputs, outputs, golden, passed
        case modelFile = "model_file"
        case tokenizerFiles = "tokenizer_files"
    }

    /// The bundle-relative path of the tokenizer file called `name` (e.g. "tokenizer.json"), if shipped.
    public func tokenizerFile(_ name: String) -> String? {
        tokenizerFiles.first { ($0.path as NSString).lastPathComponent == name }?.path
    }
}

/// A slimport release bundle's `manifest.json`: everything model-specific the app reads.
public struct Manifest: Decodable {
    public struct Release: Decodable {
        public let name: String
        public let version: String
    }

    public let release: Release
    public let passed: Bool
    public let artifacts: [ArtifactEntry]

    enum CodingKeys: String, CodingKey {
        case release, passed, artifacts
    }

    /// Reads `manifest.json` from the bundle folder at `bundle`.
    public static func read(bundle: URL) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: bundle.appendingPathComponent("manifest.json")))
    }

    /// The first artifact in `format` ("coreml", "tflite", "onnx"), optionally for `model`.
    public func find(format: String, model: String? = nil) -> ArtifactEntry? {
        artifacts.first { $0.format == format && (model == nil || $0.model == model) }
    }
}
