import Foundation

/// A tokenizer whose ids can be turned back into text: what the decoder path of the apps needs.
public protocol GenerationTokenizer: TextTokenizer {
    /// The text of `ids` (special tokens left out).
    func decode(_ ids: [Int]) -> String
}

/// What both BPE flavours (byte-level, SentencePiece-style) read from `tokenizer.json` and share:
/// vocabulary, merge ranks and the merge loop of the `tokenizers` library, inside the
/// `TokenizerFrame` (added tokens, post-processor) every tokenizer model shares. Mirrors BpeModel.kt.
public final class BpeModel {
    let vocab: [String: Int]
    let ranks: [String: Int]
    let unkId: Int?
    let ignoreMerges: Bool
    let byteFallback: Bool
    let fuseUnk: Bool
    let frame: TokenizerFrame
    var specialIds: Set<Int> { frame.specialIds }
    var addedIds: Set<Int> { frame.addedIds }
    public var padId: Int { frame.padId }
    public var modelMaxLength: Int { frame.modelMaxLength }
    lazy var idToToken: [Int: String] = {
        var reverse = [Int: String]()
        for (token, id) in vocab { reverse[id] = token }
        for token in frame.addedTokens { reverse[token.id] = token.content }
        return reverse
    }()

    init(root: [String: Any], tokenizerConfigJSON: Data?) throws {
        guard let model = root["model"] as? [String: Any], model["type"] as? String == "BPE" else {
            throw CoreError.unsupported("tokenizer.json does not hold a BPE model")
        }
        guard let vocab = model["vocab"] as? [String: Int], let merges = model["merges"] as? [Any] else {
            throw CoreError.malformed("tokenizer.json vocabulary or merges")
        }
        var ranks = [String: Int]()
        for (rank, merge) in merges.enumerated() {
            let pair: [String] = (merge as? [String]) ?? (merge as? String).map {
                $0.split(separator: " ", maxSplits: 1).map(String.init) } ?? []
            guard pair.count == 2 else { throw CoreError.malformed("merge \(rank)") }
            ranks[pair[0] + "\u{0}" + pair[1]] = rank
        }
        self.vocab = vocab
        self.ranks = ranks
        unkId = (model["unk_token"] as? String).flatMap { vocab[$0] }
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
        byteFallback = model["byte_fallback"] as? Bool ?? false
        fuseUnk = model["fuse_unk"] as? Bool ?? false
        frame = try TokenizerFrame(root: root, tokenizerConfigJSON: tokenizerConfigJSON) { vocab[$0] }
    }

    /// `tokenizers`' BPE merges: the lowest-ranked adjacent pair, everywhere, until none is left.
    func merge(_ symbols: [String]) -> [String] {
        var parts = symbols
        while parts.count > 1 {
            var best = -1
            var bestRank = Int.max
            for i in 0..<(parts.count - 1) {
                if let rank = ranks[parts[i] + "\u{0}" + parts[i + 1]], rank < bestRank {
                    bestRank = rank
                    best = i
                }
            }
            if best < 0 { break }
            let (a, b) = (parts[best], parts[best + 1])
            var next = [String]()
            var i = 0
            while i < parts.count {
                if i < parts.count - 1 && parts[i] == a && parts[i + 1] == b {
                    next.append(a + b)
                    i += 2
                } else {
                    next.append(parts[i])
                    i += 1
                }
            }
            parts = next
        }
        return parts
    }
}

/// WordPiece, byte-level BPE, SentencePiece-style BPE or SentencePiece Unigram, picked from `tokenizer.json`.
public enum Tokenizers {
    /// The tokenizer of an encoder bundle: WordPiece (BERT family), byte-level BPE (RoBERTa),
    /// SentencePiece Unigram (ALBERT) or either BPE flavour. Mirrors Kotlin's `Tokenizers.fromJson`.
    public static func text(tokenizerJSON: Data, tokenizerConfigJSON: Data?) throws -> TextTokenizer {
        guard let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any],
              let model = root["model"] as? [String: Any] else { throw CoreError.malformed("tokenizer.json") }
        switch model["type"] as? String {
        case "WordPiece": return try WordPieceTokenizer(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON)
        case "Unigram": return try UnigramTokenizer(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON)
        case "BPE": return try generation(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON)
        default: throw CoreError.unsupported("tokenizer model \(model["type"] ?? "?") is not read by this app")
        }
    }

    /// The BPE tokenizer of a decoder bundle (byte-level or SentencePiece-style).
    public static func generation(tokenizerJSON: Data, tokenizerConfigJSON: Data?) throws -> GenerationTokenizer {
        guard let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any] else {
            throw CoreError.malformed("tokenizer.json")
        }
        if SentencePieceBPETokenizer.matches(root) {
            return try SentencePieceBPETokenizer(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON)
        }
        return try ByteLevelBPETokenizer(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON)
    }
}
