import Foundation

/// A tokenizer whose ids can be turned back into text: what the decoder path of the apps needs.
public protocol GenerationTokenizer {
    /// Token ids of `text` with the post-processor's special tokens, truncated to `maxLength`.
    func encode(_ text: String, maxLength: Int) -> [Int]
    /// The text of `ids` (special tokens left out).
    func decode(_ ids: [Int]) -> String
}

/// What both BPE flavours (byte-level, SentencePiece-style) read from `tokenizer.json` and share:
/// vocabulary, merge ranks, added tokens (matched in the raw text first), the post-processor's
/// special tokens, and the merge loop of the `tokenizers` library. Mirrors the Kotlin core's BpeModel.
public final class BpeModel {
    let vocab: [String: Int]
    let ranks: [String: Int]
    let unkId: Int?
    let ignoreMerges: Bool
    let byteFallback: Bool
    let fuseUnk: Bool
    let addedTokens: [(String, Int)]
    let specialIds: Set<Int>
    let prefixIds: [Int]
    let suffixIds: [Int]
    public let padId: Int
    public let modelMaxLength: Int
    lazy var idToToken: [Int: String] = {
        var reverse = [Int: String]()
        for (token, id) in vocab { reverse[id] = token }
        for (token, id) in addedTokens { reverse[id] = token }
        return reverse
    }()
    lazy var addedIds: Set<Int> = Set(addedTokens.map(\.1))

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
        let added = root["added_tokens"] as? [[String: Any]] ?? []
        let addedTokens = added.compactMap { t -> (String, Int)? in
            guard let content = t["content"] as? String, let id = t["id"] as? Int else { return nil }
            return (content, id)
        }.sorted { $0.0.count > $1.0.count }
        let config = (tokenizerConfigJSON.flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any]) ?? [:]
        self.vocab = vocab
        self.ranks = ranks
        unkId = (model["unk_token"] as? String).flatMap { vocab[$0] }
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
        byteFallback = model["byte_fallback"] as? Bool ?? false
        fuseUnk = model["fuse_unk"] as? Bool ?? false
        self.addedTokens = addedTokens
        specialIds = Set(added.filter { $0["special"] as? Bool == true }.compactMap { $0["id"] as? Int })
        (prefixIds, suffixIds) = try Self.postProcessor(root["post_processor"] as? [String: Any], vocab, addedTokens)
        let padToken = config["pad_token"] as? String
        padId = padToken.flatMap { vocab[$0] ?? addedTokens.first(where: { t in t.0 == $0 })?.1 } ?? 0
        modelMaxLength = (config["model_max_length"] as? Double).map { $0 > 1e9 ? 1_000_000 : Int($0) } ?? 1_000_000
    }

    /// Ids of `text`: added tokens in place, every other section through `section` (its text and start
    /// offset in UTF-16 units), the post-processor's tokens around them, truncated to `maxLength`.
    func encode(_ text: String, maxLength: Int, section: (String, Int) -> [Int]) -> [Int] {
        let ns = text as NSString
        var ids = [Int]()
        var start = 0
        while start <= ns.length {
            var at = NSRange(location: NSNotFound, length: 0)
            var found: (String, Int)?
            for token in addedTokens {
                let r = ns.range(of: token.0, options: .literal, range: NSRange(location: start, length: ns.length - start))
                if r.location != NSNotFound && (at.location == NSNotFound || r.location < at.location) {
                    at = r
                    found = token
                }
            }
            let end = at.location == NSNotFound ? ns.length : at.location
            if end > start { ids += section(ns.substring(with: NSRange(location: start, length: end - start)), start) }
            guard let token = found else { break }
            ids.append(token.1)
            start = at.location + at.length
        }
        let keep = min(ids.count, max(0, maxLength - prefixIds.count - suffixIds.count))
        return prefixIds + ids.prefix(keep) + suffixIds
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

    static func postProcessor(_ post: [String: Any]?, _ vocab: [String: Int],
                              _ added: [(String, Int)]) throws -> ([Int], [Int]) {
        func id(_ token: String) throws -> Int {
            guard let id = vocab[token] ?? added.first(where: { $0.0 == token })?.1 else {
                throw CoreError.malformed("special token \(token)")
            }
            return id
        }
        switch post?["type"] as? String {
        case nil, "ByteLevel":
            return ([], [])
        case "RobertaProcessing", "BertProcessing":
            guard let cls = post?["cls"] as? [Any], let sep = post?["sep"] as? [Any],
                  let clsId = cls.last as? Int, let sepId = sep.last as? Int else { throw CoreError.malformed("post_processor") }
            return ([clsId], [sepId])
        case "TemplateProcessing":
            let specials = post?["special_tokens"] as? [String: [String: Any]] ?? [:]
            var prefix = [Int](), suffix = [Int](), seen = false
            for piece in post?["single"] as? [[String: Any]] ?? [] {
                if piece["Sequence"] != nil { seen = true; continue }
                guard let name = (piece["SpecialToken"] as? [String: Any])?["id"] as? String else { continue }
                let ids = try (specials[name]?["ids"] as? [Int]) ?? [id(name)]
                if seen { suffix += ids } else { prefix += ids }
            }
            return (prefix, suffix)
        case "Sequence":
            let inner = (post?["processors"] as? [[String: Any]])?.first { $0["type"] as? String != "ByteLevel" }
            return try postProcessor(inner, vocab, added)
        default:
            throw CoreError.unsupported("post_processor \(post?["type"] ?? "?")")
        }
    }
}

/// WordPiece, byte-level BPE or SentencePiece-style BPE, picked from `tokenizer.json`.
public enum Tokenizers {
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
