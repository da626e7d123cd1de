import Foundation

/// Byte-level BPE (GPT-2, RoBERTa, Phi) read from a Hugging Face `tokenizer.json`, reproducing the
/// `tokenizers` library: added tokens matched in the raw text, the ByteLevel pre-tokenizer (GPT-2's
/// split regex, optional prefix space, bytes mapped to printable characters), BPE merges by rank
/// (`ignore_merges` honoured) and the post-processor's special tokens (none/ByteLevel,
/// RobertaProcessing, or a TemplateProcessing `single` template). SentencePiece-style BPE
/// (Metaspace, byte fallback: Llama) is not read. The Kotlin core implements the same steps
/// (ByteLevelBpe.kt, tested against Python on the corpus); keep them in step.
public final class ByteLevelBPETokenizer {
    let vocab: [String: Int]
    let ranks: [String: Int]
    let addPrefixSpace: Bool
    let useRegex: Bool
    let ignoreMerges: Bool
    let unkId: Int?
    let addedTokens: [(String, Int)]
    let specialIds: Set<Int>
    let prefixIds: [Int]
    let suffixIds: [Int]
    public let padId: Int
    public let modelMaxLength: Int
    private lazy var idToToken: [Int: String] = {
        var reverse = [Int: String]()
        for (token, id) in vocab { reverse[id] = token }
        for (token, id) in addedTokens { reverse[id] = token }
        return reverse
    }()

    static let split = try! NSRegularExpression(
        pattern: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+")

    /// GPT-2's byte -> printable character table.
    public static let byteToUnicode: [Character] = {
        var table = [Character]()
        var extra = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            table.append(Character(Unicode.Scalar(printable ? b : 256 + extra)!))
            if !printable { extra += 1 }
        }
        return table
    }()
    static let unicodeToByte: [Character: UInt8] = Dictionary(
        uniqueKeysWithValues: byteToUnicode.enumerated().map { ($0.element, UInt8($0.offset)) })

    /// Builds the tokenizer from `tokenizer.json` and, if shipped, `tokenizer_config.json`.
    public init(tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil) throws {
        guard let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any],
              let model = root["model"] as? [String: Any] else { throw CoreError.malformed("tokenizer.json") }
        guard model["type"] as? String == "BPE" else {
            throw CoreError.unsupported("tokenizer model \(model["type"] ?? "?") is not BPE")
        }
        guard let byteLevel = Self.findByteLevel(root["pre_tokenizer"] as? [String: Any]) else {
            throw CoreError.unsupported("only byte-level BPE is read (pre_tokenizer ByteLevel)")
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
        let maxLength = (config["model_max_length"] as? Double).map { $0 > 1e9 ? 1_000_000 : Int($0) } ?? 1_000_000
        self.vocab = vocab
        self.ranks = ranks
        addPrefixSpace = byteLevel["add_prefix_space"] as? Bool ?? false
        useRegex = byteLevel["use_regex"] as? Bool ?? true
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
        unkId = (model["unk_token"] as? String).flatMap { vocab[$0] }
        self.addedTokens = addedTokens
        specialIds = Set(added.filter { $0["special"] as? Bool == true }.compactMap { $0["id"] as? Int })
        (prefixIds, suffixIds) = try Self.postProcessor(root["post_processor"] as? [String: Any], vocab, addedTokens)
        let padToken = config["pad_token"] as? String
        padId = padToken.flatMap { vocab[$0] ?? addedTokens.first(where: { t in t.0 == $0 })?.1 } ?? 0
        modelMaxLength = maxLength
    }

    /// Token ids of `text` with the post-processor's special tokens, truncated to `maxLength`.
    public func encode(_ text: String, maxLength: Int) -> [Int] {
        let ids = tokenize(text)
        let keep = min(ids.count, max(0, maxLength - prefixIds.count - suffixIds.count))
        return prefixIds + ids.prefix(keep) + suffixIds
    }

    /// Token ids of `text` without the post-processor's special tokens.
    public func tokenize(_ text: String) -> [Int] {
        let ns = text as NSString
        var out = [Int]()
        var start = 0
        var first = true
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
            if end > start {
                var piece = ns.substring(with: NSRange(location: start, length: end - start))
                if addPrefixSpace && first && !piece.hasPrefix(" ") { piece = " " + piece }
                for word in split(piece) { out += bpe(word) }
            }
            first = false
            guard let token = found else { break }
            out.append(token.1)
            start = at.location + at.length
        }
        return out
    }

    /// The text of `ids` (byte-level pieces back to UTF-8; special tokens left out unless asked).
    public func decode(_ ids: [Int], skipSpecial: Bool = true) -> String {
        var bytes = [UInt8]()
        for id in ids {
            if skipSpecial && specialIds.contains(id) { continue }
            guard let token = idToToken[id] else { continue }
            if addedTokens.contains(where: { $0.1 == id }) {
                bytes += Array(token.utf8)
                continue
            }
            for ch in token { if let b = Self.unicodeToByte[ch] { bytes.append(b) } else { bytes += Array(String(ch).utf8) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func split(_ text: String) -> [String] {
        guard useRegex else { return [text] }
        let ns = text as NSString
        return Self.split.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
    }

    private func bpe(_ word: String) -> [Int] {
        let symbols = String(word.utf8.map { Self.byteToUnicode[Int($0)] })
        if ignoreMerges, let whole = vocab[symbols] { return [whole] }
        return merge(symbols).compactMap { vocab[$0] ?? unkId }
    }

    private func merge(_ symbols: String) -> [String] {
        var parts = symbols.unicodeScalars.map { String($0) }
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

    static func findByteLevel(_ pre: [String: Any]?) -> [String: Any]? {
        guard let pre else { return nil }
        if pre["type"] as? String == "ByteLevel" { return pre }
        if pre["type"] as? String == "Sequence" {
            return (pre["pretokenizers"] as? [[String: Any]])?.first { $0["type"] as? String == "ByteLevel" }
        }
        return nil
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
