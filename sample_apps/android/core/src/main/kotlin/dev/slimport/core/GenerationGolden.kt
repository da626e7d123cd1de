package dev.slimport.core

/** One golden prompt of a decoder bundle: its ids, PyTorch's logits at the last prompt position and the
 * greedy tokens the released artifact generated. */
class GenerationVector(val text: String, val inputIds: IntArray, val lastLogits: FloatArray, val artifactTokens: IntArray)

/** The golden vectors of a decoder artifact (`golden.json` with `"kind": "generation"`). */
class GenerationGolden(val newTokens: Int, val atol: Double, val vectors: List<GenerationVector>) {
    /**
     * Runs every prompt through [generator]: the last prompt position's logits must be within [atol] of
     * PyTorch's and the greedy tokens identical to the released artifact's. With [tokenizer], also checks
     * that the app tokenizes the golden text to the golden ids.
     */
    fun selfTest(generator: Generator, tokenizer: TextTokenizer? = null, maxLength: Int = Int.MAX_VALUE): SelfTestResult {
        val problems = ArrayList<String>()
        var worst = 0.0
        for ((index, vector) in vectors.withIndex()) {
            if (tokenizer != null && !tokenizer.encode(vector.text, maxLength).contentEquals(vector.inputIds)) {
                problems.add("vector $index: the app's ids for the golden text differ from the golden ids")
            }
            var error = Double.POSITIVE_INFINITY
            val tokens = generator.generate(vector.inputIds, newTokens) { error = maxAbsError(it, vector.lastLogits) }
            worst = maxOf(worst, error)
            if (error > atol) problems.add("vector $index: last_logits differ by %.4g (tolerance %.4g)".format(error, atol))
            if (!tokens.contentEquals(vector.artifactTokens)) {
                val at = tokens.indices.first { tokens[it] != vector.artifactTokens.getOrNull(it) }
                problems.add("vector $index: generated tokens differ from the released artifact's from position $at")
            }
        }
        return SelfTestResult(problems.isEmpty(), mapOf("last_logits" to worst), problems)
    }

    companion object {
        /** True when [text] (a `golden.json`) holds decoder vectors. */
        @Suppress("UNCHECKED_CAST")
        fun isGeneration(text: String): Boolean = (Json.parse(text) as Map<String, Any?>)["kind"] == "generation"

        /** Parses a decoder `golden.json`. */
        @Suppress("UNCHECKED_CAST")
        fun parse(text: String): GenerationGolden {
            val root = Json.parse(text) as Map<String, Any?>
            require(root["kind"] == "generation") { "golden.json is not a decoder's (kind ${root["kind"]})" }
            fun ints(v: Any?): IntArray = (v as List<Any?>).map { (it as Number).toInt() }.toIntArray()
            val vectors = root.list("vectors").map {
                val v = it as Map<String, Any?>
                GenerationVector(v.str("text"), ints(v["input_ids"]),
                    (v["last_logits"] as List<Any?>).map { x -> (x as Number).toFloat() }.toFloatArray(),
                    ints(v["artifact_tokens"]))
            }
            return GenerationGolden((root["new_tokens"] as Number).toInt(),
                (root.obj("atol")["last_logits"] as Number).toDouble(), vectors)
        }
    }
}
