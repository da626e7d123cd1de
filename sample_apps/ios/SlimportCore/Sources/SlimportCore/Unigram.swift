import Foundation

/// SentencePiece Unigram tokenization (ALBERT; XLM-R and T5 layouts too) read from a Hugging Face
/// `tokenizer.json`, reproducing the `tokenizers` library: added tokens matched in the raw text
/// (`TokenizerFrame`); per remaining section the normalizer (`Normalizers`), then the pre-tokenizer
/// (optional WhitespaceSplit, then Metaspace: spaces to "▁", a "▁" prepended, words split before each
/// "▁"), then per word the best segmentation by summed piece log-probabilities (Viterbi over the
/// vocabulary; a scalar no piece starts with is `<unk>` scored 10 below the lowest piece, and
/// neighbouring unknowns fuse into one `<unk>`); then the post-processor's special tokens.
/// Mirrors Unigram.kt.
public final class UnigramTokenizer: TextTokenizer {
    let pieces: [String: Int]
    let scores: [Double]
    let unkId: Int
    let byteFallback: Bool
    let normalizer: TextNormalizer
    let preTokenizer: Metaspace
    let frame: TokenizerFrame
    let unkScore: Double
    let longestPiece: Int
    public var padId: Int { frame.padId }
    public var modelMaxLength: Int { frame.modelMaxLength }

    public init(tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil) throws {
        guard let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any],
              let model = root["model"] as? [String: Any], model["type"] as? String == "Unigram",
              let vocab = model["vocab"] as? [[Any]] else { throw CoreError.malformed("tokenizer.json Unigram model") }
        var pieces = [String: Int]()
        var scores = [Double]()
        for (i, entry) in vocab.enumerated() {
            guard entry.count == 2, let piece = entry[0] as? String, let score = (entry[1] as? NSNumber)?.doubleValue else {
                throw CoreError.malformed("Unigram piece \(i)")
            }
            pieces[piece] = i
            scores.append(score)
        }
        guard let unk = model["unk_id"] as? Int else { throw CoreError.unsupported("a Unigram model without unk_id") }
        self.pieces = pieces
        self.scores = scores
        unkId = unk
        byteFallback = model["byte_fallback"] as? Bool ?? false
        unkScore = (scores.min() ?? 0) - 10
        longestPiece = pieces.keys.map { $0.unicodeScalars.count }.max() ?? 1
        normalizer = try Normalizers.parse(root["normalizer"] as? [String: Any])
        preTokenizer = try Metaspace(root["pre_tokenizer"] as? [String: Any])
        frame = try TokenizerFrame(root: root, tokenizerConfigJSON: tokenizerConfigJSON) { pieces[$0] }
    }

    public func encode(_ text: String, maxLength: Int) -> [Int] {
        frame.encode(text, maxLength: maxLength, section: section)
    }

    public func encodePair(_ first: String, _ second: String, maxLength: Int) -> Encoding {
        frame.encodePair(first, second, maxLength: maxLength, section: section)
    }

    /// Ids of one section of text between added tokens, which starts at `start` of its text: the
    /// normalizer, the pre-tokenizer, then each word's best segmentation.
    func section(_ text: String, _ start: Int) -> [Int] {
        preTokenizer.words(normalizer(text), atStart: start == 0).flatMap { segment($0) }
    }

    /// The ids of `word`'s best segmentation (ties: the piece found first, shorter before longer).
    func segment(_ word: String) -> [Int] {
        let scalars = Array(word.unicodeScalars)
        let n = scalars.count
        if n == 0 { return [] }
        func text(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(scalars[range])) }
        var best = [Double](repeating: 0, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        var id = [Int](repeating: 0, count: n + 1)
        func offer(_ start: Int, _ end: Int, _ piece: Int, _ score: Double) {
            let total = best[start] + score
            if from[end] < 0 || total > best[end] {
                best[end] = total
                from[end] = start
                id[end] = piece
            }
        }
        for start in 0..<n {
            var single = false
            for end in (start + 1)...min(n, start + longestPiece) {
                guard let piece = pieces[text(start..<end)] else { continue }
                offer(start, end, piece, scores[piece])
                if end == start + 1 { single = true }
            }
            if !single { offer(start, start + 1, unkId, unkScore) }
        }
        var out = [Int]()
        var end = n
        while end > 0 {
            var begin = from[end]
            if id[end] != unkId {
                out.append(id[end])
            } else {
                while begin > 0 && id[begin] == unkId { begin = from[begin] }  // neighbouring unknowns fuse
                out += unknown(text(begin..<end)).reversed()
            }
            end = begin
        }
        return out.reversed()
    }

    /// An unknown stretch: its UTF-8 bytes as `<0xAB>` pieces under `byte_fallback` when all exist, else `<unk>`.
    func unknown(_ text: String) -> [Int] {
        guard byteFallback else { return [unkId] }
        let ids = text.utf8.map { pieces[String(format: "<0x%02X>", $0)] }
        return ids.allSatisfy { $0 != nil } ? ids.map { $0! } : [unkId]
    }
}

/// The Metaspace pre-tokenizer, after an optional WhitespaceSplit (a `Sequence` of the two). Mirrors Unigram.kt.
struct Metaspace {
    let whitespaceSplit: Bool
    let replacement: String
    /// "always", "first" or "never"
    let prependScheme: String
    let split: Bool

    /// Reads the `pre_tokenizer` of `tokenizer.json` (Metaspace, or WhitespaceSplit then Metaspace).
    init(_ spec: [String: Any]?) throws {
        let steps: [[String: Any]]
        switch spec?["type"] as? String {
        case "Sequence": steps = spec?["pretokenizers"] as? [[String: Any]] ?? []
        case nil: steps = []
        default: steps = [spec!]
        }
        let types = steps.map { $0["type"] as? String ?? "?" }
        guard types == ["Metaspace"] || types == ["WhitespaceSplit", "Metaspace"], let meta = steps.last else {
            throw CoreError.unsupported("pre-tokenizer \(types) (Metaspace, or WhitespaceSplit then Metaspace)")
        }
        whitespaceSplit = types.count == 2
        replacement = meta["replacement"] as? String ?? "▁"
        prependScheme = meta["prepend_scheme"] as? String ?? ((meta["add_prefix_space"] as? Bool) == false ? "never" : "always")
        split = meta["split"] as? Bool ?? true
    }

    /// The words of a normalized section; `atStart`: the section starts the text ("first" prepends there only).
    func words(_ text: String, atStart: Bool) -> [String] {
        var parts: [(String, Int)] = []
        if whitespaceSplit {
            var current = [Unicode.Scalar](), begin = -1
            for (i, s) in text.unicodeScalars.enumerated() {
                if s.properties.isWhitespace {
                    if begin >= 0 { parts.append((String(String.UnicodeScalarView(current)), begin)) }
                    current = []
                    begin = -1
                } else {
                    if begin < 0 { begin = i }
                    current.append(s)
                }
            }
            if begin >= 0 { parts.append((String(String.UnicodeScalarView(current)), begin)) }
        } else {
            parts = [(text, 0)]
        }
        let mark = replacement.unicodeScalars.first!
        var out = [String]()
        for (part, offset) in parts where !part.isEmpty {
            var scalars = part.unicodeScalars.map { $0 == " " ? mark : $0 }
            let prepend = prependScheme == "always" || (prependScheme == "first" && atStart && offset == 0)
            if prepend && scalars.first != mark { scalars.insert(mark, at: 0) }
            guard split else { out.append(String(String.UnicodeScalarView(scalars))); continue }
            var word = [Unicode.Scalar]()
            for s in scalars {
                if s == mark && !word.isEmpty {
                    out.append(String(String.UnicodeScalarView(word)))
                    word = []
                }
                word.append(s)
            }
            out.append(String(String.UnicodeScalarView(word)))
        }
        return out
    }
}
