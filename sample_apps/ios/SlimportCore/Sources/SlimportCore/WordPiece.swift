import Foundation

/// Errors reading a bundle's tokenizer or golden files.
public enum CoreError: Error, CustomStringConvertible {
    case unsupported(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .unsupported(let what): return "unsupported: \(what)"
        case .malformed(let what): return "malformed: \(what)"
        }
    }
}

/// BERT-family WordPiece tokenization read from a Hugging Face `tokenizer.json`, reproducing the
/// `tokenizers` library: BertNormalizer (clean text, CJK spacing, accent stripping, lowercase),
/// BertPreTokenizer (whitespace and punctuation), WordPiece (greedy longest match, `##` pieces),
/// special tokens matched in the raw text, and the post-processor's template (`[CLS] A [SEP]`, for pairs
/// `[CLS] A [SEP] B [SEP]`) with truncation.
/// The Kotlin core (sample_apps/android/core) implements the same steps; keep them in step.
public final class WordPieceTokenizer: TextTokenizer {
    let vocab: [String: Int]
    let unkId: Int
    let prefix: String
    let maxInputCharsPerWord: Int
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool
    let specialTokens: [(String, Int)]
    public let clsId: Int
    public let sepId: Int
    public let padId: Int
    /// The longest sequence the model takes (`model_max_length` of tokenizer_config.json; default 512).
    public let modelMaxLength: Int
    /// The post-processor's single and pair layouts (BERT's when tokenizer.json has none).
    let templates: (single: Template, pair: Template)

    /// Builds the tokenizer from `tokenizer.json` and, if shipped, `tokenizer_config.json`.
    public init(tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil) throws {
        guard let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any],
              let model = root["model"] as? [String: Any] else { throw CoreError.malformed("tokenizer.json") }
        guard model["type"] as? String == "WordPiece" else {
            throw CoreError.unsupported("tokenizer model \(model["type"] ?? "?") is not WordPiece")
        }
        let normalizer = root["normalizer"] as? [String: Any]
        if let normalizer, normalizer["type"] as? String != "BertNormalizer" {
            throw CoreError.unsupported("normalizer \(normalizer["type"] ?? "?") is not BertNormalizer")
        }
        if let pre = root["pre_tokenizer"] as? [String: Any], pre["type"] as? String != "BertPreTokenizer" {
            throw CoreError.unsupported("pre-tokenizer \(pre["type"] ?? "?") is not BertPreTokenizer")
        }
        guard let vocab = model["vocab"] as? [String: Int], let unk = model["unk_token"] as? String,
              let unkId = vocab[unk] else { throw CoreError.malformed("tokenizer.json vocabulary") }
        self.vocab = vocab
        self.unkId = unkId
        prefix = model["continuing_subword_prefix"] as? String ?? "##"
        maxInputCharsPerWord = model["max_input_chars_per_word"] as? Int ?? 100
        lowercase = normalizer?["lowercase"] as? Bool ?? false
        cleanText = normalizer?["clean_text"] as? Bool ?? true
        handleChineseChars = normalizer?["handle_chinese_chars"] as? Bool ?? true
        stripAccents = normalizer?["strip_accents"] as? Bool ?? lowercase
        let added = root["added_tokens"] as? [[String: Any]] ?? []
        let specials = added.filter { $0["special"] as? Bool == true }
            .compactMap { token -> (String, Int)? in
                guard let content = token["content"] as? String, let id = token["id"] as? Int else { return nil }
                return (content, id)
            }
            .sorted { $0.0.count > $1.0.count }
        specialTokens = specials
        var config: [String: Any] = [:]
        if let data = tokenizerConfigJSON, let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
            config = parsed
        }
        if let limit = config["model_max_length"] as? Double, limit >= 1, limit <= 1_000_000 {
            modelMaxLength = Int(limit)
        } else {
            modelMaxLength = 512
        }
        func special(_ key: String, _ fallback: String) throws -> Int {
            let token = config[key] as? String ?? fallback
            guard let id = vocab[token] else { throw CoreError.malformed("special token \(token) is not in the vocabulary") }
            return id
        }
        let cls = try special("cls_token", "[CLS]"), sep = try special("sep_token", "[SEP]")
        clsId = cls
        sepId = sep
        padId = try special("pad_token", "[PAD]")
        if let post = root["post_processor"] as? [String: Any] {
            templates = try Template.parse(post) { token in
                guard let id = vocab[token] ?? specials.first(where: { $0.0 == token })?.1 else {
                    throw CoreError.malformed("special token \(token) is not in the vocabulary")
                }
                return id
            }
        } else {
            templates = Template.bert(cls: cls, sep: sep)
        }
    }

    /// Token ids of `text` with `[CLS]`/`[SEP]`, the text's ids truncated to fit `maxLength`.
    public func encode(_ text: String, maxLength: Int) -> [Int] {
        templates.single.encode(tokenize(text), [], maxLength: maxLength).ids
    }

    /// `[CLS] first [SEP] second [SEP]`, the second text and its `[SEP]` of token type 1, the longer text
    /// truncated first to fit `maxLength`.
    public func encodePair(_ first: String, _ second: String, maxLength: Int) -> Encoding {
        templates.pair.encode(tokenize(first), tokenize(second), maxLength: maxLength)
    }

    /// Token ids of `text` without special tokens around it.
    public func tokenize(_ text: String) -> [Int] {
        var out: [Int] = []
        var rest = Substring(text)
        while true {
            var earliest: (Range<Substring.Index>, Int)?
            for (content, id) in specialTokens {
                if let range = rest.range(of: content, options: .literal),
                   earliest == nil || range.lowerBound < earliest!.0.lowerBound {
                    earliest = (range, id)
                }
            }
            let end = earliest?.0.lowerBound ?? rest.endIndex
            for word in preTokenize(normalize(String(rest[..<end]))) { wordPiece(word, into: &out) }
            guard let (range, id) = earliest else { break }
            out.append(id)
            rest = rest[range.upperBound...]
        }
        return out
    }

    /// BertNormalizer, in the order `tokenizers` applies its steps.
    public func normalize(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars)
        if cleanText {
            scalars = scalars.compactMap { s in
                if s.value == 0 || s.value == 0xFFFD || BertUnicode.isControl(s) { return nil }
                return BertUnicode.isWhitespace(s) ? " " : s
            }
        }
        if handleChineseChars {
            scalars = scalars.flatMap { s in BertUnicode.isChinese(s) ? [" ", s, " "] : [s] }
        }
        if stripAccents {
            let decomposed = String(String.UnicodeScalarView(scalars)).decomposedStringWithCanonicalMapping
            scalars = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if lowercase {
            scalars = scalars.flatMap { Array($0.properties.lowercaseMapping.unicodeScalars) }
        }
        return String(String.UnicodeScalarView(scalars))
    }

    /// BertPreTokenizer: split on whitespace (dropped) and around each punctuation scalar (kept).
    public func preTokenize(_ text: String) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for s in text.unicodeScalars {
            if BertUnicode.isWhitespace(s) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if BertUnicode.isPunctuation(s) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([s])
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    private func wordPiece(_ word: [Unicode.Scalar], into out: inout [Int]) {
        if word.count > maxInputCharsPerWord { out.append(unkId); return }
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var match: Int?
            while end > start {
                let piece = (start > 0 ? prefix : "") + String(String.UnicodeScalarView(word[start..<end]))
                if let id = vocab[piece] { match = id; break }
                end -= 1
            }
            guard let id = match else { out.append(unkId); return }
            pieces.append(id)
            start = end
        }
        out.append(contentsOf: pieces)
    }
}

/// Unicode classes as the Rust `tokenizers` library defines them for BERT.
enum BertUnicode {
    /// Rust's `char::is_whitespace` (the White_Space property).
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// Categories Cc, Cf, Cn, Co, Cs, except tab, newline and carriage return.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// ASCII punctuation or any Unicode P* category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK ideograph blocks BERT surrounds with spaces.
    static func isChinese(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}
