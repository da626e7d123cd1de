package dev.slimport.core

/**
 * What both BPE flavours (byte-level, SentencePiece-style) read from a Hugging Face `tokenizer.json`
 * and share: vocabulary, merge ranks and the merge loop of the `tokenizers` library, inside the
 * [TokenizerFrame] (added tokens, post-processor) every tokenizer model shares.
 */
class BpeModel(
    val vocab: Map<String, Int>,
    /** merge pair "a\u0000b" -> rank */
    private val ranks: Map<String, Int>,
    val unkId: Int?,
    val ignoreMerges: Boolean,
    val byteFallback: Boolean,
    val fuseUnk: Boolean,
    /** added tokens, post-processor, padding and length: shared with the other tokenizer models */
    val frame: TokenizerFrame
) {
    val specialIds: Set<Int> get() = frame.specialIds
    val idToToken: Map<Int, String> by lazy {
        val reverse = HashMap<Int, String>()
        for ((token, id) in vocab) reverse[id] = token
        for (token in frame.addedTokens) reverse[token.id] = token.content
        reverse
    }

    /** True when [id] is an added token (its text is taken as is when decoding). */
    fun isAdded(id: Int): Boolean = frame.isAdded(id)

    /** `tokenizers`' BPE merges on [symbols]: the lowest-ranked adjacent pair, everywhere, until none is left. */
    fun merge(symbols: List<String>): List<String> {
        var parts: List<String> = symbols
        while (parts.size > 1) {
            var bestRank = Int.MAX_VALUE
            var best = -1
            for (i in 0 until parts.size - 1) {
                val rank = ranks[parts[i] + "\u0000" + parts[i + 1]] ?: continue
                if (rank < bestRank) {
                    bestRank = rank
                    best = i
                }
            }
            if (best < 0) break
            val a = parts[best]
            val b = parts[best + 1]
            val next = ArrayList<String>(parts.size)
            var i = 0
            while (i < parts.size) {
                if (i < parts.size - 1 && parts[i] == a && parts[i + 1] == b) {
                    next.add(a + b)
                    i += 2
                } else {
                    next.add(parts[i])
                    i += 1
                }
            }
            parts = next
        }
        return parts
    }

    companion object {
        /** Parses the BPE model of `tokenizer.json`'s [root] (and `tokenizer_config.json` for lengths and padding). */
        @Suppress("UNCHECKED_CAST")
        fun parse(root: Map<String, Any?>, tokenizerConfigJson: String?): BpeModel {
            val model = root.obj("model")
            require(model["type"] == "BPE") { "tokenizer.json holds a ${model["type"]} model, not BPE" }
            val vocab = (model["vocab"] as Map<String, Any?>).mapValues { (it.value as Number).toInt() }
            val ranks = HashMap<String, Int>()
            for ((rank, merge) in (model["merges"] as List<Any?>).withIndex()) {
                val pair = if (merge is List<*>) merge.map { it.toString() } else merge.toString().split(" ", limit = 2)
                ranks[pair[0] + "\u0000" + pair[1]] = rank
            }
            val unk = (model["unk_token"] as? String)?.let { vocab[it] }
            return BpeModel(vocab, ranks, unk, model["ignore_merges"] == true, model["byte_fallback"] == true,
                model["fuse_unk"] == true, TokenizerFrame.parse(root, tokenizerConfigJson) { vocab[it] })
        }
    }
}
