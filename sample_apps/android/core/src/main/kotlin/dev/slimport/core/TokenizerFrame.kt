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
    /** the post-processor's layout of one text and of a pair of texts */
    private val single: Template,
    private val pair: Template,
    val padId: Int,
    val modelMaxLength: Int
) {
    private val addedIds: Set<Int> by lazy { addedTokens.map { it.id }.toSet() }

    /** True when [id] is an added token (its text is taken as is when decoding). */
    fun isAdded(id: Int): Boolean = id in addedIds

    /** Ids of [text] (see [tokens]) with the post-processor's tokens around them, truncated to fit [maxLength]. */
    fun encode(text: String, maxLength: Int, section: (String, Int) -> List<Int>): IntArray =
        single.encode(tokens(text, section), emptyList(), maxLength).ids

    /** Ids and token types of the pair ([first], [second]) laid out by the post-processor, the longer
     *  text truncated first to fit [maxLength]. */
    fun encodePair(first: String, second: String, maxLength: Int, section: (String, Int) -> List<Int>): Encoding =
        pair.encode(tokens(first, section), tokens(second, section), maxLength)

    /** Ids of [text] without special tokens around it: added tokens in place, every other section through
     *  [section] (its text and start offset). */
    fun tokens(text: String, section: (String, Int) -> List<Int>): List<Int> {
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
        return ids
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
            val (single, pair) = Template.parse(root["post_processor"] as? Map<String, Any?>, ::id)
            val config = tokenizerConfigJson?.let { Json.parse(it) as Map<String, Any?> } ?: emptyMap()
            val maxLength = (config["model_max_length"] as? Number)?.toDouble()
                ?.let { if (it > 1e9) 1_000_000 else it.toInt() } ?: 1_000_000
            val pad = (config["pad_token"] as? String)?.let { vocabId(it) ?: addedTokens.firstOrNull { t -> t.content == it }?.id } ?: 0
            return TokenizerFrame(addedTokens, specialIds, single, pair, pad, maxLength)
        }
    }
}
