import Foundation

/// One step of a `tokenizer.json` normalizer: text in, text out.
typealias TextNormalizer = (String) -> String

/// The `tokenizers` library's normalizers that SentencePiece-converted tokenizers use (ALBERT: quote
/// Replaces, NFKD, StripAccents, Lowercase, Precompiled, a Replace of runs of spaces; XLM-R and T5:
/// Precompiled, Strip and the Replace), read from `tokenizer.json`'s `normalizer`. Mirrors Normalizers.kt.
enum Normalizers {
    /// The normalizer `spec` describes (nil: none); throws for a type this core does not read.
    static func parse(_ spec: [String: Any]?) throws -> TextNormalizer {
        guard let spec else { return { $0 } }
        switch spec["type"] as? String {
        case "Sequence":
            let steps = try (spec["normalizers"] as? [[String: Any]] ?? []).map { try parse($0) }
            return { text in steps.reduce(text) { $1($0) } }
        case "Replace":
            guard let pattern = spec["pattern"] as? [String: Any], let content = spec["content"] as? String else {
                throw CoreError.malformed("Replace normalizer")
            }
            if let literal = pattern["String"] as? String {
                return { $0.replacingOccurrences(of: literal, with: content, options: .literal) }
            }
            guard let source = pattern["Regex"] as? String else { throw CoreError.malformed("Replace pattern") }
            let regex = try NSRegularExpression(pattern: source)
            let template = NSRegularExpression.escapedTemplate(for: content)
            return { text in
                regex.stringByReplacingMatches(in: text, range: NSRange(location: 0, length: (text as NSString).length),
                                               withTemplate: template)
            }
        case "NFC": return { $0.precomposedStringWithCanonicalMapping }
        case "NFD": return { $0.decomposedStringWithCanonicalMapping }
        case "NFKC": return { $0.precomposedStringWithCompatibilityMapping }
        case "NFKD": return { $0.decomposedStringWithCompatibilityMapping }
        case "Lowercase":
            return { text in Normalizers.mapScalars(text) { Array($0.properties.lowercaseMapping.unicodeScalars) } }
        case "StripAccents":  // General category Mark (Mn, Mc, Me), as the library's StripAccents removes
            return { text in
                Normalizers.mapScalars(text) { s in
                    switch s.properties.generalCategory {
                    case .nonspacingMark, .spacingMark, .enclosingMark: return []
                    default: return [s]
                    }
                }
            }
        case "Strip":
            let left = spec["strip_left"] as? Bool ?? true, right = spec["strip_right"] as? Bool ?? true
            return { text in
                var scalars = Array(text.unicodeScalars)
                if right { while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() } }
                if left { while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() } }
                return String(String.UnicodeScalarView(scalars))
            }
        case "Prepend":
            guard let prefix = spec["prepend"] as? String else { throw CoreError.malformed("Prepend normalizer") }
            return { $0.isEmpty ? $0 : prefix + $0 }
        case "Precompiled":
            guard let charsmap = spec["precompiled_charsmap"] as? String, !charsmap.isEmpty else { return { $0 } }
            guard let data = Data(base64Encoded: charsmap) else { throw CoreError.malformed("precompiled_charsmap") }
            let map = try Precompiled(charsmap: data)
            return { map.normalize($0) }
        default:
            throw CoreError.unsupported("normalizer \(spec["type"] ?? "?")")
        }
    }

    static func mapScalars(_ text: String, _ f: (Unicode.Scalar) -> [Unicode.Scalar]) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.flatMap(f)))
    }
}

/// SentencePiece's precompiled normalization map (`Precompiled` normalizer of ALBERT, T5 and XLM-R
/// `tokenizer.json`s), read as the `tokenizers` library reads it: a little-endian u32 byte size, a
/// darts-clone double-array trie over UTF-8 keys, then the NUL-separated replacement strings.
/// The lookup keeps the library's quirk on purpose: a grapheme cluster (a Swift `Character`) under 6
/// UTF-8 bytes whose bytes *start with* a key is replaced whole by the first (shortest) key's
/// replacement; any other cluster is looked up one scalar at a time. Mirrors Precompiled.kt.
final class Precompiled {
    let trie: [UInt32]
    let normalized: [UInt8]

    init(charsmap: Data) throws {
        let bytes = [UInt8](charsmap)
        func le32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        guard bytes.count >= 4 else { throw CoreError.malformed("precompiled_charsmap") }
        let size = Int(le32(0))
        guard size % 4 == 0, 4 + size <= bytes.count else { throw CoreError.malformed("precompiled_charsmap is truncated") }
        trie = (0..<(size / 4)).map { le32(4 + 4 * $0) }
        normalized = Array(bytes[(4 + size)...])
    }

    /// `text` with every grapheme cluster mapped as described above.
    func normalize(_ text: String) -> String {
        var out = ""
        for cluster in text {
            let whole = String(cluster)
            if whole.utf8.count < 6, let mapped = transform(whole) {
                out += mapped
                continue
            }
            for scalar in cluster.unicodeScalars {
                let part = String(scalar)
                out += transform(part) ?? part
            }
        }
        return out
    }

    /// The replacement of the shortest key `chunk` starts with, or nil when none does.
    func transform(_ chunk: String) -> String? {
        func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }
        var node = offset(trie[0])
        for byte in chunk.utf8 {
            if byte == 0 { break }
            node ^= Int(byte)
            guard node < trie.count else { return nil }
            let unit = trie[node]
            guard unit & ((1 << 31) | 0xff) == UInt32(byte) else { return nil }
            node ^= offset(unit)
            if (unit >> 8) & 1 == 1 {
                let start = Int(trie[node] & 0x7fff_ffff)
                var end = start
                while end < normalized.count && normalized[end] != 0 { end += 1 }
                return String(decoding: normalized[start..<end], as: UTF8.self)
            }
        }
        return nil
    }
}
