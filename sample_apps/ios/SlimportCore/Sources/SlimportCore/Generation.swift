import Foundation

/// What one call of a decoder artifact returns: logits `[T, vocab]` and the new cache rows
/// `k_new`/`v_new` `[layers, 1, kvHeads, T, headDim]`, row-major.
public struct StepOutput {
    public let logits: [Float]
    public let kNew: [Float]
    public let vNew: [Float]

    public init(logits: [Float], kNew: [Float], vNew: [Float]) {
        self.logits = logits
        self.kNew = kNew
        self.vNew = vNew
    }
}

/// One call of the artifact: int32 `input_ids`/`input_pos` `[1, T]` and the caches. The Core ML program
/// takes any T from 1 to the prefill length.
public typealias DecoderCall = (_ ids: [Int32], _ positions: [Int32], _ kCache: [Float], _ vCache: [Float]) throws -> StepOutput

/// The fixed KV cache of a decoder artifact: `k_cache`/`v_cache` `[layers, 1, kvHeads, context, headDim]`.
public struct CacheGeometry: Equatable {
    public let layers: Int, kvHeads: Int, context: Int, headDim: Int, prefillLen: Int

    public init(layers: Int, kvHeads: Int, context: Int, headDim: Int, prefillLen: Int) {
        (self.layers, self.kvHeads, self.context, self.headDim, self.prefillLen) = (layers, kvHeads, context, headDim, prefillLen)
    }

    /// Floats in one cache tensor.
    public var size: Int { layers * kvHeads * context * headDim }

    /// From the artifact's tensor specs (`input_ids` `[1, T]` or `[1, "1..T"]`, `k_cache`).
    public init(entry: ArtifactEntry) throws {
        guard let cache = entry.inputs.first(where: { $0.name == "k_cache" }),
              let ids = entry.inputs.first(where: { $0.name == "input_ids" }), ids.shape.count == 2 else {
            throw CoreError.malformed("a decoder artifact needs input_ids and k_cache inputs")
        }
        let dims: [Int] = cache.shape.compactMap { if case .fixed(let n) = $0 { return n } else { return nil } }
        guard dims.count == 5, dims[1] == 1 else { throw CoreError.malformed("k_cache must be [layers, 1, kv_heads, context, head_dim]") }
        let prefill: Int
        switch ids.shape[1] {
        case .fixed(let n): prefill = n
        case .flexible(let range): prefill = Int(range.components(separatedBy: "..").last ?? "") ?? 1
        }
        self.init(layers: dims[0], kvHeads: dims[2], context: dims[3], headDim: dims[4], prefillLen: prefill)
    }
}

/// Greedy generation over the explicit cache, exactly as slimport validated the artifact
/// (`slimport/validation/runners/static_cache.py`, and the Kotlin core's Generator): the prompt is fed
/// in chunks of the prefill length, the last chunk padded with id 0 at the following positions
/// (clamped to the last slot); the real tokens' new rows are written into the cache at their positions.
public final class Generator {
    let geometry: CacheGeometry
    let vocab: Int
    let call: DecoderCall
    private var kCache: [Float]
    private var vCache: [Float]
    private var length = 0

    public init(geometry: CacheGeometry, vocab: Int, call: @escaping DecoderCall) {
        self.geometry = geometry
        self.vocab = vocab
        self.call = call
        kCache = [Float](repeating: 0, count: geometry.size)
        vCache = [Float](repeating: 0, count: geometry.size)
    }

    /// Runs `prompt` from an empty cache; returns the logits of its last position.
    public func prefill(_ prompt: [Int]) throws -> [Float] {
        guard !prompt.isEmpty else { throw CoreError.malformed("the prompt needs at least one token") }
        for i in kCache.indices { kCache[i] = 0; vCache[i] = 0 }
        length = 0
        var last = [Float]()
        var start = 0
        while start < prompt.count {
            let chunk = Array(prompt[start..<min(prompt.count, start + geometry.prefillLen)])
            last = try feed(chunk, tokens: geometry.prefillLen)
            start += chunk.count
        }
        return last
    }

    /// Appends `token`; returns its logits.
    public func step(_ token: Int) throws -> [Float] { try feed([token], tokens: 1) }

    /// `newTokens` greedy tokens after `prompt`.
    /// `prefilled` gets the last prompt position's logits as soon as the prompt is in (golden checks
    /// compare them, apps time the first token there).
    public func generate(_ prompt: [Int], newTokens: Int, prefilled: ([Float]) -> Void = { _ in }) throws -> [Int] {
        var out = [Int]()
        var logits = try prefill(prompt)
        prefilled(logits)
        for i in 0..<newTokens {
            out.append(Decode.argmax(logits))
            if i + 1 < newTokens { logits = try step(out[i]) }
        }
        return out
    }

    private func feed(_ ids: [Int], tokens: Int) throws -> [Float] {
        guard length + ids.count <= geometry.context else {
            throw CoreError.unsupported("the artifact's KV cache holds \(geometry.context) tokens; this needs \(length + ids.count)")
        }
        let padded = (0..<tokens).map { Int32($0 < ids.count ? ids[$0] : 0) }
        let positions = (0..<tokens).map { Int32(min(length + $0, geometry.context - 1)) }
        let out = try call(padded, positions, kCache, vCache)
        write(out.kNew, into: &kCache, real: ids.count, tokens: tokens)
        write(out.vNew, into: &vCache, real: ids.count, tokens: tokens)
        length += ids.count
        return Array(out.logits[((ids.count - 1) * vocab)..<(ids.count * vocab)])
    }

    private func write(_ new: [Float], into cache: inout [Float], real: Int, tokens: Int) {
        let d = geometry.headDim
        for head in 0..<(geometry.layers * geometry.kvHeads) {
            for t in 0..<real {
                let from = (head * tokens + t) * d, to = (head * geometry.context + length + t) * d
                cache.replaceSubrange(to..<(to + d), with: new[from..<(from + d)])
            }
        }
    }
}

/// The golden prompts of a decoder artifact (`golden.json` with `"kind": "generation"`).
public struct GenerationGolden {
    public struct Vector {
        public let text: String
        public let inputIds: [Int]
        public let lastLogits: [Float]
        public let artifactTokens: [Int]
    }

    public let newTokens: Int
    public let atol: Double
    public let vectors: [Vector]

    /// True when `data` (a `golden.json`) holds decoder vectors.
    public static func isGeneration(_ data: Data) -> Bool {
        ((try? JSONSerialization.jsonObject(with: data, options: [.json5Allowed])) as? [String: Any])?["kind"] as? String
            == "generation"
    }

    public init(data: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: data, options: [.json5Allowed]) as? [String: Any],
              root["kind"] as? String == "generation", let newTokens = root["new_tokens"] as? Int,
              let atol = (root["atol"] as? [String: Double])?["last_logits"], let items = root["vectors"] as? [[String: Any]] else {
            throw CoreError.malformed("decoder golden.json")
        }
        self.newTokens = newTokens
        self.atol = atol
        vectors = try items.map { item in
            guard let text = item["text"] as? String, let ids = item["input_ids"] as? [Int],
                  let logits = item["last_logits"] as? [Double], let tokens = item["artifact_tokens"] as? [Int] else {
                throw CoreError.malformed("decoder golden vector")
            }
            return Vector(text: text, inputIds: ids, lastLogits: logits.map { Float($0) }, artifactTokens: tokens)
        }
    }

    /// Runs every prompt through `generator`: the last prompt position's logits within `atol` of PyTorch's,
    /// and greedy tokens identical to the released artifact's. With `tokenizer`, also the golden ids.
    public func selfTest(_ generator: Generator, tokenizer: GenerationTokenizer? = nil) -> SelfTestResult {
        var problems = [String]()
        var worst = 0.0
        for (index, vector) in vectors.enumerated() {
            if let tokenizer, tokenizer.encode(vector.text, maxLength: Int.max) != vector.inputIds {
                problems.append("vector \(index): the app's ids for the golden text differ from the golden ids")
            }
            do {
                var error = Double.infinity
                let tokens = try generator.generate(vector.inputIds, newTokens: newTokens) {
                    error = maxAbsError($0, vector.lastLogits)
                }
                worst = max(worst, error)
                if error > atol { problems.append("vector \(index): last_logits differ by \(String(format: "%.4g", error)) (tolerance \(String(format: "%.4g", atol)))") }
                if tokens != vector.artifactTokens {
                    let at = tokens.indices.first { tokens[$0] != vector.artifactTokens[safe: $0] } ?? tokens.count
                    problems.append("vector \(index): generated tokens differ from the released artifact's from position \(at)")
                }
            } catch {
                problems.append("vector \(index): \(error)")
                worst = .infinity
            }
        }
        return SelfTestResult(passed: problems.isEmpty, maxError: ["last_logits": worst], problems: problems)
    }
}
