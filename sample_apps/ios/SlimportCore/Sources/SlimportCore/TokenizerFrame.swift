import Foundation

/// What the apps need of a tokenizer: ids with the model's special tokens, and the padding id.
/// Mirrors the Kotlin core's TextTokenizer.
public protocol TextTokenizer {
    /// The id used to pad rows to a common length.
    var padId: Int { get }
    /// The longest sequence the model takes (`model_max_length` of tokenizer_config.json).
    var modelMaxLength: Int { get }
    /// Token ids of `text` with the model's special tokens, truncated to `maxLength`.
    func encode(_ text: String, maxLength: Int) -> [Int]
    /// Token ids and types of the pair (`first`, `second`) (a question and its context, say) with the
    /// model's special tokens, the longer text truncated first to fit `maxLength`.
    func encodePair(_ first: String, _ second: String, maxLength: Int) -> Encoding
}

/// An added token of `tokenizer.json`, matched in the raw text; `lstrip`/`rstrip` take the whitespace
/// beside it along (ALBERT's and RoBERTa's mask token: `lstrip`).
struct AddedToken {
    let content: String
    let id: Int
    let lstrip: Bool
    let rstrip: Bool
}

/// What every tokenizer model read from a Hugging Face `tokenizer.json` shares around its own
/// algorithm (BPE, Unigram): added tokens matched in the raw text before anything else, the
/// post-processor's special tokens around the text's ids, truncation, the padding id and the longest
/// sequence the model takes (`tokenizer_config.json`). Mirrors TokenizerFrame.kt.
final class TokenizerFrame {
    /// longest first, so the longer of two tokens starting at the same place wins
    let addedTokens: [AddedToken]
    let specialIds: Set<Int>
    /// the post-processor's layout of one text and of a pair of texts
    let single: Template
    let pair: Template
    let padId: Int
    let modelMaxLength: Int
    lazy var addedIds: Set<Int> = Set(addedTokens.map(\.id))

    /// Reads the frame of `tokenizer.json`'s `root`; `vocabId` looks a token up in the model's vocabulary.
    init(root: [String: Any], tokenizerConfigJSON: Data?, vocabId: @escaping (String) -> Int?) throws {
        let added = root["added_tokens"] as? [[String: Any]] ?? []
        let addedTokens = added.compactMap { t -> AddedToken? in
            guard let content = t["content"] as? String, let id = t["id"] as? Int else { return nil }
            return AddedToken(content: content, id: id, lstrip: t["lstrip"] as? Bool ?? false,
                              rstrip: t["rstrip"] as? Bool ?? false)
        }.sorted { ($0.content as NSString).length > ($1.content as NSString).length }
        let config = (tokenizerConfigJSON.flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any]) ?? [:]
        self.addedTokens = addedTokens
        specialIds = Set(added.filter { $0["special"] as? Bool == true }.compactMap { $0["id"] as? Int })
        func id(_ token: String) throws -> Int {
            guard let id = vocabId(token) ?? addedTokens.first(where: { $0.content == token })?.id else {
                throw CoreError.malformed("special token \(token) is in neither the vocabulary nor the added tokens")
            }
            return id
        }
        (single, pair) = try Template.parse(root["post_processor"] as? [String: Any], id)
        let padToken = config["pad_token"] as? String
        padId = padToken.flatMap { token in vocabId(token) ?? addedTokens.first(where: { $0.content == token })?.id } ?? 0
        modelMaxLength = (config["model_max_length"] as? Double).map { $0 > 1e9 ? 1_000_000 : Int($0) } ?? 1_000_000
    }

    /// Ids of `text` (see `tokens`) with the post-processor's tokens around them, truncated to fit `maxLength`.
    func encode(_ text: String, maxLength: Int, section: (String, Int) -> [Int]) -> [Int] {
        single.encode(tokens(text, section: section), [], maxLength: maxLength).ids
    }

    /// Ids and token types of the pair (`first`, `second`) laid out by the post-processor, the longer
    /// text truncated first to fit `maxLength`.
    func encodePair(_ first: String, _ second: String, maxLength: Int, section: (String, Int) -> [Int]) -> Encoding {
        pair.encode(tokens(first, section: section), tokens(second, section: section), maxLength: maxLength)
    }

    /// Ids of `text` without special tokens around it: added tokens in place, every other section through
    /// `section` (its text and start offset in UTF-16 units).
    func tokens(_ text: String, section: (String, Int) -> [Int]) -> [Int] {
        let ns = text as NSString
        func isSpace(_ at: Int) -> Bool { Unicode.Scalar(ns.character(at: at)).map(BertUnicode.isWhitespace) ?? false }
        var ids = [Int]()
        var start = 0
        while start <= ns.length {
            var at = NSNotFound
            var found: AddedToken?
            for token in addedTokens {
                let r = ns.range(of: token.content, options: .literal, range: NSRange(location: start, length: ns.length - start))
                if r.location != NSNotFound && (at == NSNotFound || r.location < at) {
                    at = r.location
                    found = token
                }
            }
            guard let token = found else {
                if ns.length > start { ids += section(ns.substring(from: start), start) }
                break
            }
            var end = at
            if token.lstrip { while end > start && isSpace(end - 1) { end -= 1 } }
            if end > start { ids += section(ns.substring(with: NSRange(location: start, length: end - start)), start) }
            ids.append(token.id)
            start = at + (token.content as NSString).length
            if token.rstrip { while start < ns.length && isSpace(start) { start += 1 } }
            if start == ns.length { break }
        }
        return ids
    }
}
