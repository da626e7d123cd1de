package dev.slimport.core

/**
 * SentencePiece Unigram tokenization (ALBERT; XLM-R and T5 layouts too) read from a Hugging Face
 * `tokenizer.json`, reproducing the `tokenizers` library: added tokens matched in the raw text
 * ([TokenizerFrame]); per remaining section the normalizer ([Normalizers]), then the pre-tokenizer
 * (optional WhitespaceSplit, then Metaspace: spaces to "▁", a "▁" prepended, words split before
 * each "▁"), then per word the best segmentation by summed piece log-probabilities (Viterbi over the
 * vocabulary; a character no piece starts with is `<unk>` scored 10 below the lowest piece, and
 * neighbouring unknowns fuse into one `<unk>`); then the post-processor's special tokens.
 */
class UnigramTokenizer(
    private val pieces: Map<String, Int>,
    private val scores: DoubleArray,
    private val unkId: Int,
    private val byteFallback: Boolean,
    private val normalizer: TextNormalizer,
    private val preTokenizer: Metaspace,
    override val frame: TokenizerFrame
) : FramedTokenizer {
    private val unkScore = scores.fold(Double.POSITIVE_INFINITY) { low, score -> minOf(low, score) } - 10.0
    private val longestPiece = pieces.keys.fold(1) { longest, piece -> maxOf(longest, piece.length) }
    private val cache = HashMap<String, List<Int>>()

    override fun section(text: String, start: Int): List<Int> =
        preTokenizer.words(normalizer(text), start == 0).flatMap { word ->
            cache[word] ?: segment(word).also { if (cache.size < 50000) cache[word] = it }
        }

    /** The ids of [word]'s best segmentation (ties: the piece found first, shorter before longer). */
    fun segment(word: String): List<Int> {
        if (word.length == 0) return emptyList()
        val n = word.length
        val best = DoubleArray(n + 1)
        val from = IntArray(n + 1) { -1 }
        val id = IntArray(n + 1)
        var start = 0
        while (start < n) {
            val charEnd = start + Character.charCount(word.codePointAt(start))
            var single = false
            var end = charEnd
            while (end <= n && end - start <= longestPiece) {
                val piece = pieces[word.substring(start, end)]
                if (piece != null) {
                    val score = best[start] + scores[piece]
                    if (from[end] < 0 || score > best[end]) {
                        best[end] = score
                        from[end] = start
                        id[end] = piece
                    }
                    if (end == charEnd) single = true
                }
                if (end == n) break
                end += Character.charCount(word.codePointAt(end))
            }
            if (!single) {
                val score = best[start] + unkScore
                if (from[charEnd] < 0 || score > best[charEnd]) {
                    best[charEnd] = score
                    from[charEnd] = start
                    id[charEnd] = unkId
                }
            }
            start = charEnd
        }
        val out = ArrayList<Int>()
        var end = n
        while (end > 0) {
            var begin = from[end]
            if (id[end] != unkId) out.add(id[end])
            else {
                while (begin > 0 && id[begin] == unkId) begin = from[begin]  // neighbouring unknowns fuse
                out.addAll(unknown(word.substring(begin, end)).reversed())
            }
            end = begin
        }
        out.reverse()
        return out
    }

    /** An unknown stretch: its UTF-8 bytes as `<0xAB>` pieces under `byte_fallback` when all exist, else `<unk>`. */
    private fun unknown(text: String): List<Int> {
        if (!byteFallback) return listOf(unkId)
        val ids = text.toByteArray(Charsets.UTF_8).map { pieces["<0x%02X>".format(it.toInt() and 0xff)] }
        return if (ids.all { it != null }) ids.map { it!! } else listOf(unkId)
    }

    companion object {
        /** Reads `tokenizer.json` (and `tokenizer_config.json` for lengths and padding) of a Unigram model. */
        @Suppress("UNCHECKED_CAST")
        fun fromJson(tokenizerJson: String, tokenizerConfigJson: String? = null): UnigramTokenizer {
            val root = Json.parse(tokenizerJson) as Map<String, Any?>
            val model = root.obj("model")
            require(model["type"] == "Unigram") { "tokenizer.json holds a ${model["type"]} model, not Unigram" }
            val vocab = model.list("vocab").map { it as List<Any?> }
            val pieces = HashMap<String, Int>()
            for ((i, entry) in vocab.withIndex()) pieces[entry[0] as String] = i
            val scores = DoubleArray(vocab.size) { (vocab[it][1] as Number).toDouble() }
            val unkId = (model["unk_id"] as? Number)?.toInt()
                ?: throw IllegalArgumentException("this Unigram model has no unk_id")
            return UnigramTokenizer(pieces, scores, unkId, model["byte_fallback"] == true,
                Normalizers.parse(root["normalizer"] as? Map<String, Any?>),
                Metaspace.parse(root["pre_tokenizer"] as? Map<String, Any?>),
                TokenizerFrame.parse(root, tokenizerConfigJson) { pieces[it] })
        }
    }
}

/** The Metaspace pre-tokenizer, after an optional WhitespaceSplit (a `Sequence` of the two, as XLM-R has). */
class Metaspace(
    private val whitespaceSplit: Boolean,
    private val replacement: String,
    /** "always", "first" or "never" */
    private val prependScheme: String,
    private val split: Boolean
) {
    /** The words of a normalized section; [atStart]: the section starts the text ("first" prepends there only). */
    fun words(text: String, atStart: Boolean): List<String> {
        val parts = if (whitespaceSplit) splitWhitespace(text) else listOf(text to 0)
        val out = ArrayList<String>()
        for ((part, offset) in parts) {
            if (part.length == 0) continue
            var s = part.replace(" ", replacement)
            val prepend = prependScheme == "always" || (prependScheme == "first" && atStart && offset == 0)
            if (prepend && !s.startsWith(replacement)) s = replacement + s
            if (!split) {
                out.add(s)
                continue
            }
            var begin = 0
            var at = s.indexOf(replacement, 1)
            while (at >= 0) {
                out.add(s.substring(begin, at))
                begin = at
                at = s.indexOf(replacement, at + replacement.length)
            }
            out.add(s.substring(begin))
        }
        return out
    }

    private fun splitWhitespace(text: String): List<Pair<String, Int>> {
        val out = ArrayList<Pair<String, Int>>()
        var i = 0
        var begin = -1
        while (i < text.length) {
            val cp = text.codePointAt(i)
            if (Unicode.isWhitespace(cp)) {
                if (begin >= 0) out.add(text.substring(begin, i) to begin)
                begin = -1
            } else if (begin < 0) begin = i
            i += Character.charCount(cp)
        }
        if (begin >= 0) out.add(text.substring(begin) to begin)
        return out
    }

    companion object {
        /** Reads the `pre_tokenizer` of `tokenizer.json` (Metaspace, or WhitespaceSplit then Metaspace). */
        @Suppress("UNCHECKED_CAST")
        fun parse(spec: Map<String, Any?>?): Metaspace {
            val steps = when (spec?.get("type")) {
                "Sequence" -> (spec["pretokenizers"] as List<Any?>).map { it as Map<String, Any?> }
                null -> emptyList()
                else -> listOf(spec)
            }
            val types = steps.map { it["type"] }
            require(types == listOf("Metaspace") || types == listOf("WhitespaceSplit", "Metaspace")) {
                "pre-tokenizer $types is not read by this app (Metaspace, or WhitespaceSplit then Metaspace)"
            }
            val meta = steps.last()
            val scheme = meta["prepend_scheme"] as? String ?: if (meta["add_prefix_space"] == false) "never" else "always"
            return Metaspace(types.size == 2, meta["replacement"] as? String ?: "▁", scheme, meta["split"] != false)
        }
    }
}
