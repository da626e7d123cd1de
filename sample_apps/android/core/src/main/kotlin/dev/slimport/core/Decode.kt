package dev.slimport.core

/** A label with its probability. */
data class Scored(val label: String, val score: Double)

/** Turns an artifact's outputs into the task's answer, as the sample apps show it. */
object Decode {
    /** Mean of `last_hidden_state` [1, length, hidden] over the real tokens, L2-normalized (sentence embedding). */
    fun meanPooled(hidden: FloatArray, mask: IntArray, hiddenSize: Int): DoubleArray {
        val length = mask.size
        val out = DoubleArray(hiddenSize)
        var count = 0
        for (t in 0 until length) {
            if (mask[t] == 0) continue
            count++
            for (h in 0 until hiddenSize) out[h] += hidden[t * hiddenSize + h].toDouble()
        }
        var norm = 0.0
        for (h in 0 until hiddenSize) { out[h] /= maxOf(count, 1).toDouble(); norm += out[h] * out[h] }
        norm = Math.sqrt(norm).coerceAtLeast(1e-12)
        for (h in 0 until hiddenSize) out[h] /= norm
        return out
    }

    /** Cosine similarity of two L2-normalized embeddings. */
    fun cosine(a: DoubleArray, b: DoubleArray): Double = a.indices.sumByDouble { a[it] * b[it] }

    /** Softmax over one row of logits, the best label first. */
    fun classify(logits: FloatArray, labels: List<String>?): List<Scored> {
        val peak = logits.fold(Float.NEGATIVE_INFINITY) { m, x -> maxOf(m, x) }.toDouble()
        val exp = logits.map { Math.exp(it - peak) }
        val total = exp.sum()
        return exp.mapIndexed { i, e -> Scored(labels?.getOrNull(i) ?: "LABEL_$i", e / total) }
            .sortedByDescending { it.score }
    }

    /** Index of the largest logit (the first on ties, as NumPy's argmax; NaN never wins). */
    fun argmax(logits: FloatArray): Int {
        var best = 0
        for (i in 1 until logits.size) if (logits[i] > logits[best] || logits[best].isNaN()) best = i
        return best
    }
}
