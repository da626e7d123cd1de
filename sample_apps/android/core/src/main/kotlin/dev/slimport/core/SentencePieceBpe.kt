package dev.slimport.core

/**
 * SentencePiece-style BPE (Llama, TinyLlama, Mistral) read from a Hugging Face `tokenizer.json`,
 * reproducing the `tokenizers` library: added tokens matched in the raw text ([BpeModel]); per
 * remaining section, spaces replaced by "▁" and a "▁" prepended (Metaspace `prepend_scheme`
 * "first": only the section at the start of the text; "always", or the legacy `Prepend`
 * normalizer: every section); BPE merges over characters with unknown characters falling back to
 * their UTF-8 bytes (`<0xAB>` tokens, `byte_fallback`) or `<unk>` (consecutive ones fused with
 * `fuse_unk`); then the post-processor's special tokens (Llama: `<s> $A`).
 */
class SentencePieceBpeTokenizer(
    private val model: BpeModel,
    private val replacement: String,
    /** "first", "always" or "never" */
    private val prependScheme: String,
    /** leading spaces the decoder strips (Llama's `Strip` decoder: 1) */
    private val stripLeading: Int
) : FramedTokenizer {
    override val frame: TokenizerFrame get() = model.frame

    override fun section(text: String, start: Int): List<Int> {
        var piece = text.replace(" ", replacement)
        val prepend = prependScheme == "always" || (prependScheme == "first" && start == 0)
        if (prepend && !piece.startsWith(replacement)) piece = replacement + piece
        return bpe(piece)
    }

    /**
     * The text of [ids]: "▁" back to spaces, byte tokens back to UTF-8, the decoder's leading strip.
     * As the `tokenizers` ByteFallback decoder: each run of byte tokens is decoded on its own, and a
     * run that is not valid UTF-8 as a whole (a character cut by truncation) gives one U+FFFD per byte.
     */
    fun decode(ids: IntArray, skipSpecial: Boolean = true): String {
        val out = StringBuilder()
        val run = java.io.ByteArrayOutputStream()
        fun flush() {
            if (run.size() == 0) return
            val strict = Charsets.UTF_8.newDecoder()
                .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
            try {
                out.append(strict.decode(java.nio.ByteBuffer.wrap(run.toByteArray())))
            } catch (e: java.nio.charset.CharacterCodingException) {
                repeat(run.size()) { out.append('\uFFFD') }
            }
            run.reset()
        }
        for (id in ids) {
            if (skipSpecial && id in model.specialIds) continue
            val token = model.idToToken[id] ?: continue
            val byte = BYTE_TOKEN.matchEntire(token)
            if (byte != null && !model.isAdded(id)) {
                run.write(byte.groupValues[1].toInt(16))
            } else {
                flush()
                out.append(token.replace(replacement, " "))
            }
        }
        flush()
        var text = out.toString()
        var strip = stripLeading
        while (strip > 0 && text.startsWith(" ")) {
            text = text.substring(1)
            strip--
        }
        return text
    }

    private fun bpe(word: String): List<Int> {
        val symbols = ArrayList<String>()
        var i = 0
        while (i < word.length) {
            val cp = word.codePointAt(i)
            symbols.add(String(Character.toChars(cp)))
            i += Character.charCount(cp)
        }
        val whole = model.vocab[word]
        if (model.ignoreMerges && whole != null) return listOf(whole)
        val ids = ArrayList<Int>()
        var lastUnk = false
        for (piece in model.merge(symbols)) {
            val id = model.vocab[piece]
            if (id != null) {
                ids.add(id)
                lastUnk = false
                continue
            }
            val fallback = if (model.byteFallback) piece.toByteArray(Charsets.UTF_8).map { model.vocab[byteToken(it)] } else null
            if (fallback != null && fallback.all { it != null }) {
                ids.addAll(fallback.map { it!! })
                lastUnk = false
            } else if (model.unkId != null && !(model.fuseUnk && lastUnk)) {
                ids.add(model.unkId)
                lastUnk = true
            }
        }
        return ids
    }

    companion object {
        private val BYTE_TOKEN = Regex("<0x([0-9A-Fa-f]{2})>")

        private fun byteToken(b: Byte): String = "<0x%02X>".format(b.toInt() and 0xff)

        /** Reads `tokenizer.json` (Metaspace pre-tokenizer, or the legacy Prepend/Replace normalizer). */
        @Suppress("UNCHECKED_CAST")
        fun fromJson(tokenizerJson: String, tokenizerConfigJson: String? = null): SentencePieceBpeTokenizer {
            val root = Json.parse(tokenizerJson) as Map<String, Any?>
            val pre = root["pre_tokenizer"] as? Map<String, Any?>
            val normalizers = (root["normalizer"] as? Map<String, Any?>)?.let { n ->
                if (n["type"] == "Sequence") (n["normalizers"] as List<Any?>).map { it as Map<String, Any?> } else listOf(n)
            } ?: emptyList()
            val (replacement, scheme) = when {
                pre?.get("type") == "Metaspace" -> {
                    require(pre["split"] != true) { "Metaspace with split = true is not read" }
                    val scheme = pre["prepend_scheme"] as? String ?: if (pre["add_prefix_space"] == false) "never" else "always"
                    (pre["replacement"] as? String ?: "▁") to scheme
                }
                normalizers.any { it["type"] == "Prepend" } ->
                    (normalizers.first { it["type"] == "Prepend" }["prepend"] as String) to "always"
                else -> throw IllegalArgumentException("not a SentencePiece-style BPE (no Metaspace or Prepend)")
            }
            val decoders = (root["decoder"] as? Map<String, Any?>)?.let { d ->
                if (d["type"] == "Sequence") (d["decoders"] as List<Any?>).map { it as Map<String, Any?> } else listOf(d)
            } ?: emptyList()
            val strip = decoders.firstOrNull { it["type"] == "Strip" }?.let { (it["start"] as Number).toInt() } ?: 0
            return SentencePieceBpeTokenizer(BpeModel.parse(root, tokenizerConfigJson), replacement, scheme, strip)
        }

        /** True when `tokenizer.json`'s [root] is SentencePiece-style BPE (Metaspace or a Prepend normalizer). */
        @Suppress("UNCHECKED_CAST")
        fun matches(root: Map<String, Any?>): Boolean {
            val pre = root["pre_tokenizer"] as? Map<String, Any?>
            val normalizer = root["normalizer"] as? Map<String, Any?>
            return pre?.get("type") == "Metaspace" || normalizer.toString().contains("type=Prepend")
        }
    }
}
