import Foundation

/// Token ids with the token type (segment) of each: 0 for the first text, 1 for the second of a pair.
public struct Encoding: Equatable {
    public let ids: [Int]
    public let typeIds: [Int]
}

/// How a post-processor lays out one text or a pair of texts around the special tokens, each part with
/// its token type: BERT's pair `[CLS] A [SEP] B [SEP]` has types `0 0 0 1 1`, RoBERTa's
/// `<s> A </s> </s> B </s>` all `0`. Truncation is `tokenizers`' "longest_first", the one
/// `truncation=True` selects: of a pair, the longer text loses tokens first. Mirrors Templates.kt.
struct Template {
    /// Special token `ids`, or the text `sequence` 0 (A) / 1 (B) when `ids` is nil, with its token type.
    struct Part {
        let ids: [Int]?
        let sequence: Int
        let typeId: Int
    }

    let parts: [Part]

    /// `first` and `second` (the texts' ids, no special tokens) laid out and truncated to `maxLength`.
    func encode(_ first: [Int], _ second: [Int], maxLength: Int) -> Encoding {
        let specials = parts.reduce(0) { $0 + ($1.ids?.count ?? 0) }
        let (n1, n2) = Template.truncatedLengths(first.count, second.count, budget: max(0, maxLength - specials))
        var ids = [Int](), types = [Int]()
        for part in parts {
            let piece = part.ids ?? (part.sequence == 0 ? Array(first.prefix(n1)) : Array(second.prefix(n2)))
            ids += piece
            types += [Int](repeating: part.typeId, count: piece.count)
        }
        return Encoding(ids: ids, typeIds: types)
    }

    /// The lengths `tokenizers`' "longest_first" keeps of texts of `a` and `b` tokens for a `budget` of
    /// text tokens: the longer text is cut to what the shorter leaves, and when even that is not enough
    /// each gets half (the longer one the odd token).
    static func truncatedLengths(_ a: Int, _ b: Int, budget: Int) -> (Int, Int) {
        if a + b <= budget { return (a, b) }
        let swap = a > b
        var short = swap ? b : a
        var long = short > budget ? short : max(short, budget - short)
        if short + long > budget {
            short = budget / 2
            long = short + budget % 2
        }
        return (min(a, swap ? long : short), min(b, swap ? short : long))
    }

    /// BERT's layout: `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, the second text and its `[SEP]` of type 1.
    static func bert(cls: Int, sep: Int) -> (single: Template, pair: Template) {
        (Template(parts: [Part(ids: [cls], sequence: 0, typeId: 0), Part(ids: nil, sequence: 0, typeId: 0),
                          Part(ids: [sep], sequence: 0, typeId: 0)]),
         Template(parts: [Part(ids: [cls], sequence: 0, typeId: 0), Part(ids: nil, sequence: 0, typeId: 0),
                          Part(ids: [sep], sequence: 0, typeId: 0), Part(ids: nil, sequence: 1, typeId: 1),
                          Part(ids: [sep], sequence: 1, typeId: 1)]))
    }

    /// The single and pair templates of `tokenizer.json`'s post-processor `post`; `id` resolves a token.
    static func parse(_ post: [String: Any]?, _ id: (String) throws -> Int) throws -> (single: Template, pair: Template) {
        func idOf(_ entry: Any?) throws -> Int {
            guard let value = (entry as? [Any])?.last as? Int else { throw CoreError.malformed("post_processor") }
            return value
        }
        switch post?["type"] as? String {
        case nil, "ByteLevel":
            return (Template(parts: [Part(ids: nil, sequence: 0, typeId: 0)]),
                    Template(parts: [Part(ids: nil, sequence: 0, typeId: 0), Part(ids: nil, sequence: 1, typeId: 1)]))
        case "BertProcessing":
            return try bert(cls: idOf(post?["cls"]), sep: idOf(post?["sep"]))
        case "RobertaProcessing":
            let cls = try [idOf(post?["cls"])], sep = try [idOf(post?["sep"])]
            return (Template(parts: [Part(ids: cls, sequence: 0, typeId: 0), Part(ids: nil, sequence: 0, typeId: 0),
                                     Part(ids: sep, sequence: 0, typeId: 0)]),
                    Template(parts: [Part(ids: cls, sequence: 0, typeId: 0), Part(ids: nil, sequence: 0, typeId: 0),
                                     Part(ids: sep, sequence: 0, typeId: 0), Part(ids: sep, sequence: 0, typeId: 0),
                                     Part(ids: nil, sequence: 1, typeId: 0), Part(ids: sep, sequence: 0, typeId: 0)]))
        case "TemplateProcessing":
            let specials = post?["special_tokens"] as? [String: [String: Any]] ?? [:]
            func parts(_ items: Any?) throws -> Template {
                guard let items = items as? [[String: Any]] else { throw CoreError.malformed("post_processor template") }
                return try Template(parts: items.map { (piece: [String: Any]) throws -> Part in
                    if let sequence = piece["Sequence"] as? [String: Any] {
                        return Part(ids: nil, sequence: sequence["id"] as? String == "B" ? 1 : 0,
                                    typeId: sequence["type_id"] as? Int ?? 0)
                    }
                    guard let special = piece["SpecialToken"] as? [String: Any], let name = special["id"] as? String else {
                        throw CoreError.malformed("post_processor template")
                    }
                    let ids = try (specials[name]?["ids"] as? [Int]) ?? [id(name)]
                    return Part(ids: ids, sequence: 0, typeId: special["type_id"] as? Int ?? 0)
                })
            }
            return (try parts(post?["single"]), try parts(post?["pair"]))
        case "Sequence":
            let inner = (post?["processors"] as? [[String: Any]])?.first { $0["type"] as? String != "ByteLevel" }
            return try parse(inner, id)
        default:
            throw CoreError.unsupported("post_processor \(post?["type"] ?? "?")")
        }
    }
}
