package dev.slimport.core

/**
 * What both BPE flavours (byte-level, SentencePiece-style) read from a Hugging Face `tokenizer.json`
 * and share: vocabulary, merge ranks, added tokens (matched in the raw text before anything else),
 * the post-processor's special tokens, and the merge loop of the `tokenizers` library.
 */
class BpeModel(
    val vocab: Map<String, Int>,
    /** merge pair "a\u0000b" -> rank */
    private val ranks: Map<String, Int>,
    val unkId: Int?,
    val ignoreMerges: Boolean,
    val byteFallback: Boolean,
    val fuseUnk: Boolean,
    /** Added tokens matched in the raw text (content -> id), longest first. */
    val addedTokens: List<Pair<String, Int>>,
    val specialIds: Set<Int>,
    private val prefixIds: IntArray,
    private val suffixIds: IntArray,
    val padId: Int,
    val modelMaxLength: Int
) {
    val idToToken: Map<Int, String> by lazy {
        val reverse = HashMap<Int, String>()
        for ((token, id) in vocab) reverse[id] = token
        for ((token, id) in addedTokens) reverse[id] = token
        reverse
    }
    private val addedIds: Set<Int> by lazy { addedTokens.map { it.second }.toSet() }

    /** True when [id] is an added token (its text is taken as is when decoding). */
    fun isAdded(id: Int): Boolean = id in addedIds

    /** Ids of [text]: added tokens in place, every other section through [section] (its text and start
     * offset), the post-processor's tokens around them, the text's ids truncated to fit [maxLength]. */
    fun encode(text: String, maxLength: Int, section: (String, Int) -> List<Int>): IntArray {
        val ids = ArrayList<Int>()
        var start = 0
        while (start <= text.length) {
            var at = -1
            var found: Pair<String, Int>? = null
            for (token in addedTokens) {
                val i = text.indexOf(token.first, start)
                if (i >= 0 && (at < 0 || i < at)) {
                    at = i
                    found = token
                }
            }
            val end = if (at < 0) text.length else at
            if (end > start) ids.addAll(section(text.substring(start, end), start))
            if (at < 0) break
            ids.add(found!!.second)
            start = at + found.first.length
        }
        val keep = minOf(ids.size, maxOf(0, maxLength - prefixIds.size - suffixIds.size))
        return prefixIds + ids.subList(0, keep).toIntArray() + suffixIds
    }

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
            val added = (root["added_tokens"] as? List<Any?> ?: emptyList()).map { it as Map<String, Any?> }
            val addedTokens = added.map { it.str("content") to (it["id"] as Number).toInt() }
                .sortedByDescending { it.first.length }
            val specialIds = added.filter { it["special"] == true }.map { (it["id"] as Number).toInt() }.toSet()
            val (prefix, suffix) = postProcessor(root["post_processor"] as? Map<String, Any?>, vocab, addedTokens)
            val config = tokenizerConfigJson?.let { Json.parse(it) as Map<String, Any?> } ?: emptyMap()
            val maxLength = (config["model_max_length"] as? Number)?.toDouble()
                ?.let { if (it > 1e9) 1_000_000 else it.toInt() } ?: 1_000_000
            val unk = (model["unk_token"] as? String)?.let { vocab[it] }
            val padToken = config["pad_token"] as? String
            val pad = padToken?.let { vocab[it] ?: addedTokens.firstOrNull { t -> t.first == it }?.second } ?: 0
            return BpeModel(vocab, ranks, unk, model["ignore_merges"] == true, model["byte_fallback"] == true,
                model["fuse_unk"] == true, addedTokens, specialIds, prefix, suffix, pad, maxLength)
        }

        @Suppress("UNCHECKED_CAST")
        private fun postProcessor(
            post: Map<String, Any?>?,
            vocab: Map<String, Int>,
            added: List<Pair<String, Int>>
        ): Pair<IntArray, IntArray> {
            fun id(token: String): Int = vocab[token] ?: added.first { it.first == token }.second
            return when (post?.get("type")) {
                null, "ByteLevel" -> IntArray(0) to IntArray(0)
                "RobertaProcessing", "BertProcessing" -> {
                    val cls = post["cls"] as List<Any?>
                    val sep = post["sep"] as List<Any?>
                    intArrayOf((cls[1] as Number).toInt()) to intArrayOf((sep[1] as Number).toInt())
                }
                "TemplateProcessing" -> {
                    val specials = post["special_tokens"] as? Map<String, Any?> ?: emptyMap()
                    val prefix = ArrayList<Int>()
                    val suffix = ArrayList<Int>()
                    var seen = false
                    for (item in post["single"] as List<Any?>) {
                        val piece = item as Map<String, Any?>
                        if (piece.containsKey("Sequence")) {
                            seen = true
                            continue
                        }
                        val name = piece.obj("SpecialToken").str("id")
                        val ids = (specials[name] as? Map<String, Any?>)?.get("ids") as? List<Any?>
                        val resolved = ids?.map { (it as Number).toInt() } ?: listOf(id(name))
                        (if (seen) suffix else prefix).addAll(resolved)
                    }
                    prefix.toIntArray() to suffix.toIntArray()
                }
                "Sequence" -> {
                    val inner = (post["processors"] as List<Any?>).map { it as Map<String, Any?> }
                        .firstOrNull { it["type"] != "ByteLevel" }
                    postProcessor(inner, vocab, added)
                }
                else -> throw IllegalArgumentException("post_processor ${post["type"]} is not read")
            }
        }
    }
}
