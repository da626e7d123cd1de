import Foundation

/// Turns an artifact's outputs into the task's answer, as the sample app shows it.
public enum Decode {
    /// Mean of `last_hidden_state` [1, length, hidden] over the real tokens, L2-normalized.
    public static func meanPooled(hidden: [Float], mask: [Int32], hiddenSize: Int) -> [Double] {
        var out = [Double](repeating: 0, count: hiddenSize)
        var count = 0
        for t in mask.indices where mask[t] != 0 {
            count += 1
            for h in 0..<hiddenSize { out[h] += Double(hidden[t * hiddenSize + h]) }
        }
        out = out.map { $0 / Double(max(count, 1)) }
        let norm = max(sqrt(out.reduce(0) { $0 + $1 * $1 }), 1e-12)
        return out.map { $0 / norm }
    }

    /// Cosine similarity of two L2-normalized embeddings.
    public static func cosine(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// Softmax over one row of logits, the best label first.
    public static func classify(logits: [Float], labels: [String]?) -> [(label: String, score: Double)] {
        let peak = Double(logits.max() ?? 0)
        let exp = logits.map { Foundation.exp(Double($0) - peak) }
        let total = exp.reduce(0, +)
        return exp.enumerated()
            .map { (label: labels?[safe: $0.offset] ?? "LABEL_\($0.offset)", score: $0.element / total) }
            .sorted { $0.score > $1.score }
    }

    /// Index of the largest logit (the first on ties, as NumPy's argmax; NaN never wins).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in logits.indices.dropFirst() where logits[i] > logits[best] || logits[best].isNaN { best = i }
        return best
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
