package dev.slimport.core

/** An added token of `tokenizer.json`, matched in the raw text; `lstrip`/`rstrip` take the whitespace
 * beside it along (ALBERT's and RoBERTa's mask token: `lstrip`). */
class AddedToken(val content: String, val id: Int, val lstrip: Boolean, val rstrip: Boolean)

/**
 * What every tokenizer model read from a Hugging Face `tokenizer.json` shares around its own
 * algorithm (BPE, Unigram): added tokens matched in the raw text before anything else, the
 * post-processor's special tokens around the text's ids, truncation, the padding id and the
 * longest sequence the model takes (`tokenizer_config.json`).
 */
class TokenizerFrame(
    /** longest first, so the longer of two tokens starting at the same place wins */
    val addedTokens: List<AddedToken>,
    val specialIds: Set<Int>,
    private val prefixIds: IntArray,
    private val suffixIds: IntArray,
    val padId: Int,
    val modelMaxLength: Int
) {
    private val addedIds: Set<Int> by lazy { addedTokens.map { it.id }.toSet() }

    /** True when [id] is an added token (its text is taken as is when decoding). */
    fun isAdded(id: Int): Boolean = id in addedIds

    /** Ids of [text]: added tokens in place, every other section through [section] (its text and start
     * offset), the post-processor's tokens around them, the text's ids truncated to fit [maxLength]. */
    fun encode(text: String, maxLength: Int, section: (String, Int) -> List<Int>): IntArray {
        val ids = ArrayList<Int>()
        var start = 0
        while (start <= text.length) {
            var at = -1
            var found: AddedToken? = null
            for (token in addedTokens) {
                val i = text.indexOf(token.content, start)
                if (i >= 0 && (at < 0 || i < at)) {
                    at = i
                    found = token
                }
            }
            if (found == null) {
                if (text.length > start) ids.addAll(section(text.substring(start), start))
                break
            }
            var end = at
            if (found.lstrip) while (end > start && Unicode.isWhitespace(text.codePointBefore(end))) {
                end -= Character.charCount(text.codePointBefore(end))
            }
            if (end > start) ids.addAll(section(text.substring(start, end), start))
            ids.add(found.id)
            start = at + found.content.length
            if (found.rstrip) while (start < text.length && Unicode.isWhitespace(text.codePointAt(start))) {
                start += Character.charCount(text.codePointAt(start))
            }
            if (start == text.length) break
        }
        val keep = minOf(ids.size, maxOf(0, maxLength - prefixIds.size - suffixIds.size))
        return prefixIds + ids.subList(0, keep).toIntArray() + suffixIds
    }

    companion object {
        /** Reads the frame of `tokenizer.json`'s [root]; [vocabId] looks a token up in the model's vocabulary. */
        @Suppress("UNCHECKED_CAST")
        fun parse(root: Map<String, Any?>, tokenizerConfigJson: String?, vocabId: (String) -> Int?): TokenizerFrame {
            val added = (root["added_tokens"] as? List<Any?> ?: emptyList()).map { it as Map<String, Any?> }
            val addedTokens = added.map {
                AddedToken(it.str("content"), (it["id"] as Number).toInt(), it["lstrip"] == true, it["rstrip"] == true)
            }.sortedByDescending { it.content.length }
            val specialIds = added.filter { it["special"] == true }.map { (it["id"] as Number).toInt() }.toSet()
            fun id(token: String): Int = vocabId(token) ?: addedTokens.firstOrNull { it.content == token }?.id
                ?: throw IllegalArgumentException("special token $token is in neither the vocabulary nor the added tokens")
            val (prefix, suffix) = postProcessor(root["post_processor"] as? Map<String, Any?>, ::id)
            val config = tokenizerConfigJson?.let { Json.parse(it) as Map<String, Any?> } ?: emptyMap()
            val maxLength = (config["model_max_length"] as? Number)?.toDouble()
                ?.let { if (it > 1e9) 1_000_000 else it.toInt() } ?: 1_000_000
            val pad = (config["pad_token"] as? String)?.let { vocabId(it) ?: addedTokens.firstOrNull { t -> t.content == it }?.id } ?: 0
            return TokenizerFrame(addedTokens, specialIds, prefix, suffix, pad, maxLength)
        }

        @Suppress("UNCHECKED_CAST")
        private fun postProcessor(post: Map<String, Any?>?, id: (String) -> Int): Pair<IntArray, IntArray> =
            when (post?.get("type")) {
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
                    postProcessor(inner, id)
                }
                else -> throw IllegalArgumentException("post_processor ${post["type"]} is not read")
            }
    }
}
