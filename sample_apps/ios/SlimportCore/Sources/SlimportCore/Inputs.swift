import Foundation

/// An int32 tensor in row-major order.
public struct IntTensor: Equatable {
    public let shape: [Int]
    public let data: [Int32]
}

/// Builds an artifact's inputs from text exactly as slimport fed it during validation: the tokenizer's
/// template (`[CLS] ... [SEP]`; for a pair, a question and its context, `[CLS] A [SEP] B [SEP]`)
/// truncated to the longest sequence the artifact takes (of a pair, the longer text first), padded with
/// the pad id to the profile's fixed length (static profiles) or to the longest row (flexible ones),
/// int32 `input_ids`, `attention_mask` and `token_type_ids` (1 on a pair's second text where the
/// template says so), only those the artifact takes. Mirrors Inputs.kt.
public struct InputBuilder {
    let entry: ArtifactEntry
    let tokenizer: TextTokenizer

    public init(entry: ArtifactEntry, tokenizer: TextTokenizer) {
        self.entry = entry
        self.tokenizer = tokenizer
    }

    /// The longest sequence fed to the artifact.
    public var maxLength: Int {
        entry.profile.staticShape ? min(entry.profile.seqLen, tokenizer.modelMaxLength) : tokenizer.modelMaxLength
    }

    /// Inputs for `texts` (1 up to the profile's batch; the batch is filled by repeating the last text).
    public func build(_ texts: [String]) throws -> [String: IntTensor] {
        try batch(texts) { text in
            let ids = tokenizer.encode(text, maxLength: maxLength)
            return Encoding(ids: ids, typeIds: [Int](repeating: 0, count: ids.count))
        }
    }

    /// Inputs for text pairs, e.g. (question, context) for question answering; as `build` otherwise.
    public func buildPairs(_ pairs: [(String, String)]) throws -> [String: IntTensor] {
        try batch(pairs) { pair in tokenizer.encodePair(pair.0, pair.1, maxLength: maxLength) }
    }

    private func batch<T>(_ items: [T], _ encode: (T) -> Encoding) throws -> [String: IntTensor] {
        guard let last = items.last, items.count <= entry.profile.batch else {
            throw CoreError.malformed("give 1...\(entry.profile.batch) texts for this artifact's batch size")
        }
        let rows = (items + Array(repeating: last, count: entry.profile.batch - items.count)).map(encode)
        let length = entry.profile.staticShape ? maxLength : rows.map(\.ids.count).max() ?? 0
        var ids = [Int32](repeating: Int32(tokenizer.padId), count: rows.count * length)
        var mask = [Int32](repeating: 0, count: rows.count * length)
        var types = [Int32](repeating: 0, count: rows.count * length)
        for (r, row) in rows.enumerated() {
            for c in row.ids.indices {
                ids[r * length + c] = Int32(row.ids[c])
                mask[r * length + c] = 1
                types[r * length + c] = Int32(row.typeIds[c])
            }
        }
        let shape = [rows.count, length]
        let all = ["input_ids": IntTensor(shape: shape, data: ids),
                   "attention_mask": IntTensor(shape: shape, data: mask),
                   "token_type_ids": IntTensor(shape: shape, data: types)]
        var out: [String: IntTensor] = [:]
        for spec in entry.inputs {
            guard let tensor = all[spec.name] else { throw CoreError.unsupported("input \(spec.name)") }
            out[spec.name] = tensor
        }
        return out
    }
}
