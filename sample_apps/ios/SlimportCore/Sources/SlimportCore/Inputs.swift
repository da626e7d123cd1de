import Foundation

/// An int32 tensor in row-major order.
public struct IntTensor: Equatable {
    public let shape: [Int]
    public let data: [Int32]
}

/// Builds an artifact's inputs from text exactly as slimport fed it during validation: the tokenizer's ids
/// truncated to the longest sequence the artifact takes, padded with the pad id to the profile's fixed
/// length (static profiles) or to the longest text (flexible ones), int32 `input_ids`,
/// `attention_mask` and `token_type_ids` (zeros), only those the artifact takes.
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
        guard let last = texts.last, texts.count <= entry.profile.batch else {
            throw CoreError.malformed("give 1...\(entry.profile.batch) texts for this artifact's batch size")
        }
        let rows = (texts + Array(repeating: last, count: entry.profile.batch - texts.count))
            .map { tokenizer.encode($0, maxLength: maxLength) }
        let length = entry.profile.staticShape ? maxLength : rows.map(\.count).max() ?? 0
        var ids = [Int32](repeating: Int32(tokenizer.padId), count: rows.count * length)
        var mask = [Int32](repeating: 0, count: rows.count * length)
        for (r, row) in rows.enumerated() {
            for (c, id) in row.enumerated() {
                ids[r * length + c] = Int32(id)
                mask[r * length + c] = 1
            }
        }
        let shape = [rows.count, length]
        let all = ["input_ids": IntTensor(shape: shape, data: ids),
                   "attention_mask": IntTensor(shape: shape, data: mask),
                   "token_type_ids": IntTensor(shape: shape, data: [Int32](repeating: 0, count: ids.count))]
        var out: [String: IntTensor] = [:]
        for spec in entry.inputs {
            guard let tensor = all[spec.name] else { throw CoreError.unsupported("input \(spec.name)") }
            out[spec.name] = tensor
        }
        return out
    }
}
