import Foundation

/// SentencePiece-style BPE (Llama, TinyLlama, Mistral) read from a Hugging Face `tokenizer.json`,
/// reproducing the `tokenizers` library: added tokens matched in the raw text (`BpeModel`); per
/// remaining section, spaces replaced by "▁" and a "▁" prepended (Metaspace "first": only the
/// section at the start of the text; "always" or the legacy `Prepend` normalizer: every section);
/// BPE merges over characters, unknown characters falling back to their UTF-8 byte tokens
/// (`<0xAB>`) or `<unk>`; then the post-processor's special tokens. Mirrors SentencePieceBpe.kt.
public final class SentencePieceBPETokenizer: GenerationTokenizer {
    let model: BpeModel
    let replacement: String
    let prependScheme: String
    let stripLeading: Int
    public var padId: Int { model.padId }
    public var modelMaxLength: Int { model.modelMaxLength }

    /// True when `tokenizer.json`'s `root` is SentencePiece-style BPE (Metaspace or a Prepend normalizer).
    public static func matches(_ root: [String: Any]) -> Bool {
        if (root["pre_tokenizer"] as? [String: Any])?["type"] as? String == "Metaspace" { return true }
        return normalizers(root).contains { $0["type"] as? String == "Prepend" }
    }

    static func normalizers(_ root: [String: Any]) -> [[String: Any]] {
        guard let n = root["normalizer"] as? [String: Any] else { return [] }
        return n["type"] as? String == "Sequence" ? (n["normalizers"] as? [[String: Any]] ?? []) : [n]
    }

    public init(tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil) throws {
        guard let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any] else {
            throw CoreError.malformed("tokenizer.json")
        }
        if let pre = root["pre_tokenizer"] as? [String: Any], pre["type"] as? String == "Metaspace" {
            guard pre["split"] as? Bool != true else { throw CoreError.unsupported("Metaspace with split = true") }
            replacement = pre["replacement"] as? String ?? "▁"
            prependScheme = pre["prepend_scheme"] as? String ?? ((pre["add_prefix_space"] as? Bool) == false ? "never" : "always")
        } else if let prepend = Self.normalizers(root).first(where: { $0["type"] as? String == "Prepend" })?["prepend"] as? String {
            replacement = prepend
            prependScheme = "always"
        } else {
            throw CoreError.unsupported("not a SentencePiece-style BPE (no Metaspace or Prepend)")
        }
        let decoder = root["decoder"] as? [String: Any]
        let decoders = decoder?["type"] as? String == "Sequence" ? (decoder?["decoders"] as? [[String: Any]] ?? []) : [decoder ?? [:]]
        stripLeading = decoders.first { $0["type"] as? String == "Strip" }?["start"] as? Int ?? 0
        model = try BpeModel(root: root, tokenizerConfigJSON: tokenizerConfigJSON)
    }

    public func encode(_ text: String, maxLength: Int) -> [Int] {
        model.frame.encode(text, maxLength: maxLength, section: section)
    }

    public func encodePair(_ first: String, _ second: String, maxLength: Int) -> Encoding {
        model.frame.encodePair(first, second, maxLength: maxLength, section: section)
    }

    /// Ids of one section of text between added tokens, which starts at `start` of its text: spaces to
    /// the replacement, the prepended one where the scheme asks, then BPE.
    func section(_ text: String, _ start: Int) -> [Int] {
        var piece = text.replacingOccurrences(of: " ", with: replacement)
        let prepend = prependScheme == "always" || (prependScheme == "first" && start == 0)
        if prepend && !piece.hasPrefix(replacement) { piece = replacement + piece }
        return bpe(piece)
    }

    /// The text of `ids`: "▁" back to spaces, byte tokens back to UTF-8, the decoder's leading strip.
    /// As the `tokenizers` ByteFallback decoder: each run of byte tokens is decoded on its own, and a
    /// run that is not valid UTF-8 as a whole (a character cut by truncation) gives one U+FFFD per byte.
    public func decode(_ ids: [Int]) -> String {
        var text = ""
        var run = [UInt8]()
        func flush() {
            guard !run.isEmpty else { return }
            text += String(bytes: run, encoding: .utf8) ?? String(repeating: "\u{FFFD}", count: run.count)
            run.removeAll()
        }
        for id in ids where !model.specialIds.contains(id) {
            guard let token = model.idToToken[id] else { continue }
            if !model.addedIds.contains(id), token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"),
               let b = UInt8(token.dropFirst(3).prefix(2), radix: 16) {
                run.append(b)
            } else {
                flush()
                text += token.replacingOccurrences(of: replacement, with: " ")
            }
        }
        flush()
        for _ in 0..<stripLeading where text.hasPrefix(" ") { text.removeFirst() }
        return text
    }

    private func bpe(_ word: String) -> [Int] {
        if model.ignoreMerges, let whole = model.vocab[word] { return [whole] }
        var ids = [Int]()
        var lastUnk = false
        for piece in model.merge(word.unicodeScalars.map { String($0) }) {
            if let id = model.vocab[piece] {
                ids.append(id)
                lastUnk = false
                continue
            }
            let fallback = model.byteFallback ? piece.utf8.map { model.vocab[String(format: "<0x%02X>", $0)] } : []
            if model.byteFallback, fallback.allSatisfy({ $0 != nil }) {
                ids += fallback.map { $0! }
                lastUnk = false
            } else if let unk = model.unkId, !(model.fuseUnk && lastUnk) {
                ids.append(unk)
                lastUnk = true
            }
        }
        return ids
    }
}
