import Foundation
import XCTest

@testable import SlimportCore

/// Decoder support, the same checks as the Kotlin core's DecoderTest: a decoder bundle's cache geometry
/// and golden vectors (SLIMPORT_DECODER_BUNDLE), and the generator's cache bookkeeping (no files
/// needed). The BPE tokenizers decoders use are checked against Python in TokenizerTests.
final class DecoderTests: XCTestCase {
    func testDecoderBundleGeometryAndGolden() throws {
        guard let path = ProcessInfo.processInfo.environment["SLIMPORT_DECODER_BUNDLE"] else {
            throw XCTSkip("set SLIMPORT_DECODER_BUNDLE to a decoder release bundle")
        }
        let bundle = URL(fileURLWithPath: path)
        let manifest = try Manifest.read(bundle: bundle)
        for entry in manifest.artifacts {
            XCTAssertEqual(entry.inputs.map(\.name), ["input_ids", "input_pos", "k_cache", "v_cache"])
            let geometry = try CacheGeometry(entry: entry)
            XCTAssertEqual(geometry.prefillLen, 128)
            let data = try Data(contentsOf: bundle.appendingPathComponent(entry.golden))
            XCTAssertTrue(GenerationGolden.isGeneration(data))
            let golden = try GenerationGolden(data: data)
            let vocab = golden.vectors[0].lastLogits.count
            let result = golden.selfTest(Generator(geometry: geometry, vocab: vocab, call: fake(geometry, vocab: vocab)))
            XCTAssertFalse(result.passed)
        }
    }

    /// Each token's key is id + 1; a row's logits peak at (sum of the keys it can see) mod vocab.
    func fake(_ geometry: CacheGeometry, vocab: Int) -> DecoderCall {
        return { ids, positions, kCache, _ in
            var running = (0..<Int(positions[0])).reduce(Float(0)) { $0 + kCache[$1] }
            var logits = [Float](repeating: 0, count: ids.count * vocab)
            for t in ids.indices {
                running += Float(ids[t] + 1)
                logits[t * vocab + Int(running.rounded()) % vocab] = 1
            }
            var new = [Float](repeating: 0, count: geometry.layers * geometry.kvHeads * ids.count * geometry.headDim)
            for t in ids.indices { new[t] = Float(ids[t] + 1) }
            return StepOutput(logits: logits, kNew: new, vNew: new)
        }
    }

    func testGeneratorFeedsChunksAndWritesTheCacheLikeTheValidationRunner() throws {
        let vocab = 97
        let prompt = (0..<23).map { ($0 * 7 + 3) % vocab }
        var expected = [Int]()
        var sum = prompt.reduce(0) { $0 + $1 + 1 }
        for _ in 0..<12 {
            expected.append(sum % vocab)
            sum += expected.last! + 1
        }
        for prefill in [1, 4, 8, 23, 64] {
            let geometry = CacheGeometry(layers: 1, kvHeads: 1, context: 40, headDim: 1, prefillLen: prefill)
            let got = try Generator(geometry: geometry, vocab: vocab, call: fake(geometry, vocab: vocab))
                .generate(prompt, newTokens: 12)
            XCTAssertEqual(got, expected, "prefill length \(prefill)")
        }
        let small = CacheGeometry(layers: 1, kvHeads: 1, context: 30, headDim: 1, prefillLen: 8)
        XCTAssertThrowsError(try Generator(geometry: small, vocab: vocab, call: fake(small, vocab: vocab))
            .generate(prompt, newTokens: 12))
    }
}
