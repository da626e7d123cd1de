package dev.slimport.core

/** What one call of a decoder artifact returns: logits `[T, vocab]` and the new cache rows
 * `k_new`/`v_new` `[layers, 1, kvHeads, T, headDim]`, all row-major. */
class StepOutput(val logits: FloatArray, val kNew: FloatArray, val vNew: FloatArray)

/** One call of the artifact: int32 `input_ids` and `input_pos` `[1, T]` and the caches -> [StepOutput].
 * The Android app implements it with LiteRT's `prefill` (T = prefill length) and `decode` (T = 1)
 * signatures; Core ML takes any T up to the prefill length. */
typealias DecoderCall = (ids: IntArray, positions: IntArray, kCache: FloatArray, vCache: FloatArray) -> StepOutput

/** The fixed KV cache of a decoder artifact: `k_cache`/`v_cache` `[layers, 1, kvHeads, context, headDim]`. */
class CacheGeometry(val layers: Int, val kvHeads: Int, val context: Int, val headDim: Int, val prefillLen: Int) {
    /** Floats in one cache tensor. */
    val size: Int get() = layers * kvHeads * context * headDim

    companion object {
        /** From the artifact's tensor specs in the manifest (`input_ids` `[1, T]` or `[1, "1..T"]`, `k_cache`). */
        fun of(entry: ArtifactEntry): CacheGeometry {
            val cache = entry.inputs.first { it.name == "k_cache" }.shape.map { (it as Number).toInt() }
            require(cache.size == 5 && cache[1] == 1) { "k_cache must be [layers, 1, kv_heads, context, head_dim]" }
            val tokens = entry.inputs.first { it.name == "input_ids" }.shape[1]
            val prefill = if (tokens is Number) tokens.toInt() else tokens.toString().substringAfter("..").toInt()
            return CacheGeometry(cache[0], cache[2], cache[3], cache[4], prefill)
        }
    }
}

/**
 * Greedy generation over the explicit cache, exactly as slimport validated the artifact
 * (`slimport/validation/runners/static_cache.py`): the prompt is fed in chunks of the prefill length,
 * the last chunk padded with id 0 at the following positions (clamped to the last slot); each call's
 * new rows for the real tokens are written into the cache at their positions; then one token per step.
 */
class Generator(private val geometry: CacheGeometry, private val vocab: Int, private val call: DecoderCall) {
    private val kCache = FloatArray(geometry.size)
    private val vCache = FloatArray(geometry.size)
    private var length = 0

    /** Runs [prompt] from an empty cache; returns the logits of its last position. */
    fun prefill(prompt: IntArray): FloatArray {
        require(prompt.isNotEmpty()) { "the prompt needs at least one token" }
        kCache.fill(0f)
        vCache.fill(0f)
        length = 0
        var last = FloatArray(0)
        var start = 0
        while (start < prompt.size) {
            val chunk = prompt.copyOfRange(start, minOf(prompt.size, start + geometry.prefillLen))
            last = feed(chunk, geometry.prefillLen)
            start += chunk.size
        }
        return last
    }

    /** Appends [token]; returns its logits. */
    fun step(token: Int): FloatArray = feed(intArrayOf(token), 1)

    /** [newTokens] greedy tokens after [prompt]; [prefilled] gets the last prompt position's logits as
     * soon as the prompt is in (golden checks compare them, apps time the first token there). */
    fun generate(prompt: IntArray, newTokens: Int, prefilled: (FloatArray) -> Unit = {}): IntArray {
        val out = IntArray(newTokens)
        var logits = prefill(prompt)
        prefilled(logits)
        for (i in 0 until newTokens) {
            out[i] = Decode.argmax(logits)
            if (i + 1 < newTokens) logits = step(out[i])
        }
        return out
    }

    private fun feed(ids: IntArray, tokens: Int): FloatArray {
        require(length + ids.size <= geometry.context) {
            "the artifact's KV cache holds ${geometry.context} tokens; this needs ${length + ids.size}"
        }
        val padded = IntArray(tokens) { if (it < ids.size) ids[it] else 0 }
        val positions = IntArray(tokens) { minOf(length + it, geometry.context - 1) }
        val out = call(padded, positions, kCache, vCache)
        write(out.kNew, kCache, ids.size, tokens)
        write(out.vNew, vCache, ids.size, tokens)
        length += ids.size
        return out.logits.copyOfRange((ids.size - 1) * vocab, ids.size * vocab)
    }

    /** Copies rows 0 until [real] of `new [layers, 1, kvHeads, tokens, headDim]` into the cache slots from [length]. */
    private fun write(new: FloatArray, cache: FloatArray, real: Int, tokens: Int) {
        val d = geometry.headDim
        for (head in 0 until geometry.layers * geometry.kvHeads) {
            for (t in 0 until real) {
                System.arraycopy(new, (head * tokens + t) * d, cache, (head * geometry.context + length + t) * d, d)
            }
        }
    }
}
