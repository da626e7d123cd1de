package dev.slimport.core

/** An int32 tensor in row-major order. */
class IntTensor(val shape: IntArray, val data: IntArray) {
    override fun equals(other: Any?): Boolean =
        other is IntTensor && shape.contentEquals(other.shape) && data.contentEquals(other.data)

    override fun hashCode(): Int = 31 * shape.contentHashCode() + data.contentHashCode()

    override fun toString(): String = "IntTensor(${shape.joinToString("x")})"
}

/**
 * Builds an artifact's inputs from text exactly as slimport fed it during validation: the tokenizer's
 * template (`[CLS] ... [SEP]`; for a pair, a question and its context, `[CLS] A [SEP] B [SEP]`)
 * truncated to the longest sequence the artifact takes (of a pair, the longer text first), padded
 * with the pad id to the profile's fixed length (static profiles) or to the longest row of the batch
 * (flexible ones), int32 `input_ids`, `attention_mask` and `token_type_ids` (1 on a pair's second
 * text where the template says so), only those the artifact takes.
 */
class InputBuilder(private val entry: ArtifactEntry, private val tokenizer: TextTokenizer) {
    /** The longest sequence fed to the artifact. */
    val maxLength: Int =
        if (entry.profile.staticShape) minOf(entry.profile.seqLen, tokenizer.modelMaxLength) else tokenizer.modelMaxLength

    /** Inputs for [texts] (at most the profile's batch; the batch is filled by repeating the last text). */
    fun build(texts: List<String>): Map<String, IntTensor> = batch(texts) { text ->
        val ids = tokenizer.encode(text, maxLength)
        Encoding(ids, IntArray(ids.size))
    }

    /** Inputs for text pairs, e.g. (question, context) for question answering; as [build] otherwise. */
    fun buildPairs(pairs: List<Pair<String, String>>): Map<String, IntTensor> = batch(pairs) { pair ->
        tokenizer.encodePair(pair.first, pair.second, maxLength)
    }

    private fun <T> batch(items: List<T>, encode: (T) -> Encoding): Map<String, IntTensor> {
        require(items.isNotEmpty() && items.size <= entry.profile.batch) {
            "give 1..${entry.profile.batch} texts for this artifact's batch size"
        }
        val rows = (items + List(entry.profile.batch - items.size) { items.last() }).map(encode)
        val length = if (entry.profile.staticShape) maxLength else rows.fold(0) { longest, row -> maxOf(longest, row.ids.size) }
        val batch = rows.size
        val ids = IntArray(batch * length) { tokenizer.padId }
        val mask = IntArray(batch * length)
        val types = IntArray(batch * length)
        for ((r, row) in rows.withIndex()) {
            for (c in row.ids.indices) {
                ids[r * length + c] = row.ids[c]
                mask[r * length + c] = 1
                types[r * length + c] = row.typeIds[c]
            }
        }
        val shape = intArrayOf(batch, length)
        val all = mapOf(
            "input_ids" to IntTensor(shape, ids),
            "attention_mask" to IntTensor(shape, mask),
            "token_type_ids" to IntTensor(shape, types)
        )
        val names = entry.inputs.map { it.name }
        val unknown = names.filter { it !in all }
        require(unknown.isEmpty()) { "this app cannot build input(s) $unknown" }
        return names.associateWith { all.getValue(it) }
    }
}
