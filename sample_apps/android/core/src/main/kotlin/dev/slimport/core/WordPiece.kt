package dev.slimport.core

import java.text.Normalizer

/**
 * BERT-family WordPiece tokenization read from a Hugging Face `tokenizer.json`, reproducing the
 * `tokenizers` library: BertNormalizer (clean text, CJK spacing, accent stripping, lowercase),
 * BertPreTokenizer (whitespace and punctuation), WordPiece (greedy longest match, `##` pieces),
 * special tokens matched in the raw text, and the post-processor's template (`[CLS] A [SEP]`, for pairs
 * `[CLS] A [SEP] B [SEP]`) with truncation.
 */
class WordPieceTokenizer(
    private val vocab: Map<String, Int>,
    private val unkToken: String,
    private val prefix: String,
    private val maxInputCharsPerWord: Int,
    private val cleanText: Boolean,
    private val handleChineseChars: Boolean,
    private val stripAccents: Boolean,
    private val lowercase: Boolean,
    /** Special tokens matched in the raw text before normalization (content -> id), longest first. */
    private val specialTokens: List<Pair<String, Int>>,
    val clsId: Int,
    val sepId: Int,
    override val padId: Int,
    /** The longest sequence the model takes (`model_max_length` of tokenizer_config.json). */
    override val modelMaxLength: Int,
    /** The post-processor's single and pair layouts (BERT's by default). */
    private val templates: Pair<Template, Template> = Template.bert(clsId, sepId)
) : TextTokenizer {
    /** Token ids of [text] with `[CLS]`/`[SEP]`, the text's ids truncated to fit [maxLength]. */
    override fun encode(text: String, maxLength: Int): IntArray =
        templates.first.encode(tokenize(text), emptyList(), maxLength).ids

    /** `[CLS] first [SEP] second [SEP]`, the second text and its `[SEP]` of token type 1, the longer
     *  text truncated first to fit [maxLength]. */
    override fun encodePair(first: String, second: String, maxLength: Int): Encoding =
        templates.second.encode(tokenize(first), tokenize(second), maxLength)

    /** Token ids of [text] without special tokens around it. */
    fun tokenize(text: String): List<Int> {
        val out = ArrayList<Int>()
        var start = 0
        while (start <= text.length) {
            val (at, special) = nextSpecial(text, start)
            val end = if (at < 0) text.length else at
            if (end > start) {
                for (word in preTokenize(normalize(text.substring(start, end)))) wordPiece(word, out)
            }
            if (at < 0) break
            out.add(special!!.second)
            start = at + special.first.length
        }
        return out
    }

    private fun nextSpecial(text: String, from: Int): Pair<Int, Pair<String, Int>?> {
        var best = -1
        var found: Pair<String, Int>? = null
        for (token in specialTokens) {
            val at = text.indexOf(token.first, from)
            if (at >= 0 && (best < 0 || at < best)) { best = at; found = token }
        }
        return Pair(best, found)
    }

    /** BertNormalizer: the steps in the order `tokenizers` applies them. */
    fun normalize(text: String): String {
        var s = text
        if (cleanText) s = Normalizers.mapCodePoints(s) { cp ->
            when {
                cp == 0 || cp == 0xFFFD || Unicode.isControl(cp) -> ""
                Unicode.isWhitespace(cp) -> " "
                else -> String(Character.toChars(cp))
            }
        }
        if (handleChineseChars) s = Normalizers.mapCodePoints(s) { cp ->
            if (Unicode.isChinese(cp)) " " + String(Character.toChars(cp)) + " " else String(Character.toChars(cp))
        }
        if (stripAccents) {
            s = Normalizers.mapCodePoints(Normalizer.normalize(s, Normalizer.Form.NFD)) { cp ->
                if (Character.getType(cp) == Character.NON_SPACING_MARK.toInt()) "" else String(Character.toChars(cp))
            }
        }
        if (lowercase) s = Normalizers.mapCodePoints(s) { cp -> Unicode.lowercase(cp) }
        return s
    }

    /** BertPreTokenizer: split on whitespace (dropped) and around each punctuation character (kept). */
    fun preTokenize(text: String): List<String> {
        val words = ArrayList<String>()
        val current = StringBuilder()
        fun flush() {
            if (current.isNotEmpty()) { words.add(current.toString()); current.setLength(0) }
        }
        var i = 0
        while (i < text.length) {
            val cp = text.codePointAt(i)
            i += Character.charCount(cp)
            when {
                Unicode.isWhitespace(cp) -> flush()
                Unicode.isBertPunctuation(cp) -> { flush(); words.add(String(Character.toChars(cp))) }
                else -> current.appendCodePoint(cp)
            }
        }
        flush()
        return words
    }

    private fun wordPiece(word: String, out: MutableList<Int>) {
        val unk = vocab.getValue(unkToken)
        if (word.codePointCount(0, word.length) > maxInputCharsPerWord) { out.add(unk); return }
        val pieces = ArrayList<Int>()
        var start = 0
        while (start < word.length) {
            var end = word.length
            var match = -1
            while (end > start) {
                val piece = (if (start > 0) prefix else "") + word.substring(start, end)
                val id = vocab[piece]
                if (id != null) { match = id; break }
                end = word.offsetByCodePoints(end, -1)
            }
            if (match < 0) { out.add(unk); return }
            pieces.add(match)
            start = end
        }
        out.addAll(pieces)
    }

    companion object {
        /** Builds the tokenizer from the text of `tokenizer.json` and, if shipped, `tokenizer_config.json`
         *  (for `model_max_length`; default 512). Throws [UnsupportedOperationException] for other
         *  tokenizer types. */
        @Suppress("UNCHECKED_CAST")
        fun fromJson(tokenizerJson: String, tokenizerConfigJson: String? = null): WordPieceTokenizer {
            val root = Json.parse(tokenizerJson) as Map<String, Any?>
            val model = root.obj("model")
            if (model["type"] != "WordPiece") {
                throw UnsupportedOperationException("tokenizer model ${model["type"]} is not WordPiece")
            }
            val normalizer = root["normalizer"] as? Map<String, Any?>
            if (normalizer != null && normalizer["type"] != "BertNormalizer") {
                throw UnsupportedOperationException("normalizer ${normalizer["type"]} is not BertNormalizer")
            }
            val pre = root["pre_tokenizer"] as? Map<String, Any?>
            if (pre != null && pre["type"] != "BertPreTokenizer") {
                throw UnsupportedOperationException("pre-tokenizer ${pre["type"]} is not BertPreTokenizer")
            }
            val vocab = HashMap<String, Int>()
            for ((token, id) in model.obj("vocab")) vocab[token] = (id as Number).toInt()
            val lowercase = normalizer?.get("lowercase") == true
            val specials = (root["added_tokens"] as? List<Any?> ?: emptyList()).map { it as Map<String, Any?> }
                .filter { it["special"] == true }
                .map { Pair(it.str("content"), it.int("id")) }
                .sortedByDescending { it.first.length }
            val config = tokenizerConfigJson?.let { Json.parse(it) as Map<String, Any?> } ?: emptyMap()
            val maxLength = (config["model_max_length"] as? Number)?.toDouble()
                ?.let { if (it in 1.0..1_000_000.0) it.toInt() else null } ?: 512
            fun special(name: String, default: String): Int {
                val token = config[name] as? String ?: default
                return vocab[token] ?: throw IllegalArgumentException("special token $token is not in the vocabulary")
            }
            val cls = special("cls_token", "[CLS]")
            val sep = special("sep_token", "[SEP]")
            val post = root["post_processor"] as? Map<String, Any?>
            val templates = if (post == null) Template.bert(cls, sep) else Template.parse(post) { token ->
                vocab[token] ?: specials.firstOrNull { it.first == token }?.second
                    ?: throw IllegalArgumentException("special token $token is not in the vocabulary")
            }
            return WordPieceTokenizer(
                vocab, model.str("unk_token"), model["continuing_subword_prefix"] as? String ?: "##",
                (model["max_input_chars_per_word"] as? Number)?.toInt() ?: 100,
                normalizer?.get("clean_text") != false, normalizer?.get("handle_chinese_chars") != false,
                (normalizer?.get("strip_accents") as? Boolean) ?: lowercase, lowercase, specials,
                cls, sep, special("pad_token", "[PAD]"), maxLength, templates
            )
        }
    }
}

/** Unicode character classes as the Rust `tokenizers` library defines them for BERT. */
object Unicode {
    private val WHITESPACE = intArrayOf(
        0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
        0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000
    ).toHashSet()

    /** Rust's `char::is_whitespace` (the White_Space property). */
    fun isWhitespace(cp: Int): Boolean = cp in WHITESPACE

    /** Categories Cc, Cf, Cn, Co, Cs, except tab, newline and carriage return. */
    fun isControl(cp: Int): Boolean {
        if (cp == 0x09 || cp == 0x0A || cp == 0x0D) return false
        return when (Character.getType(cp).toByte()) {
            Character.CONTROL, Character.FORMAT, Character.UNASSIGNED, Character.PRIVATE_USE, Character.SURROGATE -> true
            else -> false
        }
    }

    /** ASCII punctuation or any Unicode P* category. */
    fun isBertPunctuation(cp: Int): Boolean {
        if (cp in 33..47 || cp in 58..64 || cp in 91..96 || cp in 123..126) return true
        return when (Character.getType(cp).toByte()) {
            Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
            Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
            Character.OTHER_PUNCTUATION -> true
            else -> false
        }
    }

    /** The CJK ideograph blocks BERT surrounds with spaces. */
    fun isChinese(cp: Int): Boolean =
        cp in 0x4E00..0x9FFF || cp in 0x3400..0x4DBF || cp in 0x20000..0x2A6DF || cp in 0x2A700..0x2B73F ||
            cp in 0x2B740..0x2B81F || cp in 0x2B920..0x2CEAF || cp in 0xF900..0xFAFF || cp in 0x2F800..0x2FA1F

    /** Rust's `char::to_lowercase` (unconditional mappings; U+0130 becomes "i" + combining dot). */
    fun lowercase(cp: Int): String =
        if (cp == 0x130) "i\u0307" else String(Character.toChars(Character.toLowerCase(cp)))
}
