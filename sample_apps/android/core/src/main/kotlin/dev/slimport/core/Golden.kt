package dev.slimport.core

/** One golden vector of `golden.json`: the text (and, for question answering, the context it is paired
 *  with), the exact inputs, PyTorch's outputs and their shapes. */
class GoldenVector(
    val text: String,
    val inputs: Map<String, IntTensor>,
    val outputs: Map<String, FloatArray>,
    val shapes: Map<String, IntArray>,
    val textPair: String? = null
) {
    /** The inputs [builder] makes of this vector's text (or text pair). */
    fun build(builder: InputBuilder): Map<String, IntTensor> =
        if (textPair == null) builder.build(listOf(text)) else builder.buildPairs(listOf(Pair(text, textPair)))
}

/** The outcome of a golden self-test: PASS/FAIL, the largest error per output, and one line per problem. */
class SelfTestResult(val passed: Boolean, val maxError: Map<String, Double>, val problems: List<String>) {
    override fun toString(): String =
        (if (passed) "PASS" else "FAIL") + " (max error " +
            maxError.entries.joinToString { "${it.key} %.3g".format(it.value) } + ")" +
            (if (problems.isEmpty()) "" else ": " + problems.first())
}

/** The golden vectors of one artifact and the per-output absolute tolerances released with them. */
class Golden(val atol: Map<String, Double>, val vectors: List<GoldenVector>) {
    /**
     * Runs every vector through [model] (inputs by name -> outputs by name, row-major floats) and compares
     * with PyTorch's outputs within [atol]. With [builder], also checks that the app builds the golden
     * inputs from the golden text (or text pair) exactly (same shape, same ids), as the artifact was validated
     * with them.
     */
    fun selfTest(model: (Map<String, IntTensor>) -> Map<String, FloatArray>, builder: InputBuilder? = null): SelfTestResult {
        val problems = ArrayList<String>()
        val worst = LinkedHashMap<String, Double>()
        for ((index, vector) in vectors.withIndex()) {
            if (builder != null) {
                val built = vector.build(builder)
                for ((name, expected) in vector.inputs) {
                    if (built[name] != expected) problems.add("vector $index: built $name differs from the golden input")
                }
            }
            val produced = model(vector.inputs)
            for ((name, expected) in vector.outputs) {
                val got = produced[name]
                if (got == null || got.size != expected.size) {
                    problems.add("vector $index: output $name missing or of size ${got?.size}, expected ${expected.size}")
                    worst[name] = Double.POSITIVE_INFINITY
                    continue
                }
                val error = maxAbsError(got, expected)
                worst[name] = maxOf(worst[name] ?: 0.0, error)
                val limit = atol[name] ?: 0.0
                if (error > limit) problems.add("vector $index: $name differs by %.4g (tolerance %.4g)".format(error, limit))
            }
        }
        return SelfTestResult(problems.isEmpty(), worst, problems)
    }

    companion object {
        /** Parses the text of a `golden.json`. */
        @Suppress("UNCHECKED_CAST")
        fun parse(text: String): Golden {
            val root = Json.parse(text) as Map<String, Any?>
            val atol = root.obj("atol").mapValues { (it.value as Number).toDouble() }
            val vectors = root.list("vectors").map { item ->
                val v = item as Map<String, Any?>
                val shapes = v.obj("shapes").mapValues { s -> (s.value as List<Any?>).map { (it as Number).toInt() }.toIntArray() }
                GoldenVector(
                    v.str("text"),
                    v.obj("inputs").mapValues { intTensor(it.value) },
                    v.obj("outputs").mapValues { flatten(it.value).let { f -> FloatArray(f.size) { i -> f[i].toFloat() } } },
                    shapes,
                    v["text_pair"] as? String
                )
            }
            return Golden(atol, vectors)
        }

        private fun intTensor(nested: Any?): IntTensor {
            val shape = ArrayList<Int>()
            var level: Any? = nested
            while (level is List<*>) { shape.add(level.size); level = level.firstOrNull() }
            val flat = flatten(nested)
            return IntTensor(shape.toIntArray(), IntArray(flat.size) { flat[it].toInt() })
        }

        private fun flatten(nested: Any?): List<Double> {
            val out = ArrayList<Double>()
            fun walk(x: Any?) {
                when (x) {
                    is List<*> -> x.forEach { walk(it) }
                    is Number -> out.add(x.toDouble())
                    else -> throw IllegalArgumentException("golden.json: a tensor holds $x")
                }
            }
            walk(nested)
            return out
        }
    }
}

/** The largest |got - expected| over two equal-length arrays; infinite when any is NaN or the sizes differ. */
fun maxAbsError(got: FloatArray, expected: FloatArray): Double {
    if (got.size != expected.size) return Double.POSITIVE_INFINITY
    var error = 0.0
    for (i in expected.indices) {
        val e = Math.abs(got[i].toDouble() - expected[i].toDouble())
        if (e.isNaN() || e > error) error = if (e.isNaN()) Double.POSITIVE_INFINITY else e
    }
    return error
}
