import Foundation
import XCTest

@testable import SlimportCore

/// The core against a real bundle: set SLIMPORT_BUNDLE to a folder made by `slimport release`, and
/// optionally SLIMPORT_PARITY to the tokenizer-parity file tests/test_apps.py writes
/// (`{"max_length": n, "cases": [{"text": ..., "ids": [...]}]}`). The same checks as the Kotlin core's.
final class CoreTests: XCTestCase {
    var bundle: URL!
    var manifest: Manifest!

    override func setUpWithError() throws {
        guard let path = ProcessInfo.processInfo.environment["SLIMPORT_BUNDLE"] else {
            throw XCTSkip("set SLIMPORT_BUNDLE to a slimport release bundle")
        }
        bundle = URL(fileURLWithPath: path)
        manifest = try Manifest.read(bundle: bundle)
    }

    func tokenizer(_ entry: ArtifactEntry) throws -> TextTokenizer {
        let json = try Data(contentsOf: bundle.appendingPathComponent(entry.tokenizerFile("tokenizer.json")!))
        let config = try entry.tokenizerFile("tokenizer_config.json").map {
            try Data(contentsOf: bundle.appendingPathComponent($0))
        }
        return try Tokenizers.text(tokenizerJSON: json, tokenizerConfigJSON: config)
    }

    func golden(_ entry: ArtifactEntry) throws -> Golden {
        try Golden(data: Data(contentsOf: bundle.appendingPathComponent(entry.golden)))
    }

    func testManifestIsRead() throws {
        XCTAssertFalse(manifest.artifacts.isEmpty)
        for entry in manifest.artifacts {
            XCTAssertTrue(entry.inputs.contains { $0.name == "input_ids" && $0.dtype == "int32" })
            XCTAssertTrue(FileManager.default.fileExists(
                atPath: bundle.appendingPathComponent("\(entry.folder)/\(entry.modelFile)").path))
        }
    }

    func testTokenizerMatchesPythonOnEveryText() throws {
        guard let path = ProcessInfo.processInfo.environment["SLIMPORT_PARITY"] else {
            throw XCTSkip("set SLIMPORT_PARITY to the parity file tests/test_apps.py writes")
        }
        let parity = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let maxLength = parity["max_length"] as! Int
        let cases = parity["cases"] as! [[String: Any]]
        let tok = try tokenizer(manifest.artifacts[0])
        var same = 0
        for item in cases {
            if reproduces(tok, item, maxLength: maxLength) {
                same += 1
            } else {
                XCTFail("\((item["text"] as! String).prefix(40)) (pair: \(item["pair"] != nil)) differs from Python's ids")
            }
        }
        print("tokenizer parity: \(same)/\(cases.count) texts identical")
    }

    func testBuiltInputsMatchTheGoldenInputsExactly() throws {
        for entry in manifest.artifacts {
            let builder = InputBuilder(entry: entry, tokenizer: try tokenizer(entry))
            for vector in try golden(entry).vectors {
                let built = try vector.build(builder)
                XCTAssertEqual(Set(built.keys), Set(vector.inputs.keys))
                for (name, tensor) in vector.inputs {
                    XCTAssertEqual(built[name], tensor, "\(entry.target) \(vector.text.prefix(20)) \(name)")
                }
            }
        }
    }

    func testSelfTestPassesOnPyTorchOutputsAndFailsBeyondTolerance() throws {
        for entry in manifest.artifacts {
            let vectors = try golden(entry)
            let builder = InputBuilder(entry: entry, tokenizer: try tokenizer(entry))
            func lookup(_ inputs: [String: IntTensor]) -> [String: [Float]] {
                vectors.vectors.first { $0.inputs == inputs }!.outputs
            }
            XCTAssertTrue(vectors.selfTest(builder: builder, model: lookup).passed)
            let shifted = vectors.selfTest { inputs in
                lookup(inputs).map { key, values in (key, values.map { $0 + 3 * Float(vectors.atol[key]!) }) }
                    .reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            XCTAssertFalse(shifted.passed)
            XCTAssertFalse(vectors.selfTest { _ in [:] }.passed)
        }
    }

    func testDecodingGivesEmbeddingsAndLabels() throws {
        let embedder = manifest.artifacts.first { $0.task == "feature-extraction" }!
        let vector = try golden(embedder).vectors[0]
        let pooled = Decode.meanPooled(hidden: vector.outputs["last_hidden_state"]!,
                                       mask: vector.inputs["attention_mask"]!.data,
                                       hiddenSize: vector.shapes["last_hidden_state"]!.last!)
        XCTAssertEqual(Decode.cosine(pooled, pooled), 1, accuracy: 1e-9)
        if let classifier = manifest.artifacts.first(where: { $0.task == "text-classification" }) {
            let scored = Decode.classify(logits: try golden(classifier).vectors[0].outputs["logits"]!,
                                         labels: classifier.labels)
            XCTAssertEqual(scored.reduce(0) { $0 + $1.score }, 1, accuracy: 1e-9)
        }
    }
}
