import Foundation

/// Byte-level BPE (GPT-2, RoBERTa, Phi) read from a Hugging Face `tokenizer.json`, reproducing the
/// `tokenizers` library: added tokens matched in the raw text (`BpeModel`), then per remaining
/// section the ByteLevel pre-tokenizer (a prefix space when asked, GPT-2's split regex, bytes mapped
/// to printable characters) and BPE merges, then the post-processor's special tokens. The Kotlin
/// core implements the same steps (tested against Python on the corpus); keep them in step.
public final class ByteLevelBPETokenizer: GenerationTokenizer {
    let model: BpeModel
    let addPrefixSpace: Bool
    let useRegex: Bool
    public var padId: Int { model.padId }
    public var modelMaxLength: Int { model.modelMaxLength }

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
        guard let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any] else {
            throw CoreError.malformed("tokenizer.json")
        }
        guard let byteLevel = Self.findByteLevel(root["pre_tokenizer"] as? [String: Any]) else {
            throw CoreError.unsupported("not byte-level BPE (no ByteLevel pre_tokenizer)")
        }
        model = try BpeModel(root: root, tokenizerConfigJSON: tokenizerConfigJSON)
        addPrefixSpace = byteLevel["add_prefix_space"] as? Bool ?? false
        useRegex = byteLevel["use_regex"] as? Bool ?? true
    }

    public func encode(_ text: String, maxLength: Int) -> [Int] {
        model.frame.encode(text, maxLength: maxLength, section: section)
    }

    public func encodePair(_ first: String, _ second: String, maxLength: Int) -> Encoding {
        model.frame.encodePair(first, second, maxLength: maxLength, section: section)
    }

    /// Ids of one section of text between added tokens: the ByteLevel pre-tokenizer, then BPE.
    func section(_ text: String, _ start: Int) -> [Int] {
        let piece = addPrefixSpace && !text.hasPrefix(" ") ? " " + text : text
        return split(piece).flatMap { bpe($0) }
    }

    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecial: true) }

    /// The text of `ids` (byte-level pieces back to UTF-8; special tokens left out unless asked).
    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var bytes = [UInt8]()
        for id in ids {
            if skipSpecial && model.specialIds.contains(id) { continue }
            guard let token = model.idToToken[id] else { continue }
            if model.addedIds.contains(id) {
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
        if model.ignoreMerges, let whole = model.vocab[symbols] { return [whole] }
        return model.merge(symbols.unicodeScalars.map { String($0) }).compactMap { model.vocab[$0] ?? model.unkId }
    }

    static func findByteLevel(_ pre: [String: Any]?) -> [String: Any]? {
        guard let pre else { return nil }
        if pre["type"] as? String == "ByteLevel" { return pre }
        if pre["type"] as? String == "Sequence" {
            return (pre["pretokenizers"] as? [[String: Any]])?.first { $0["type"] as? String == "ByteLevel" }
        }
        return nil
    }
}
