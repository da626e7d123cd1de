package dev.slimport.core

import java.util.regex.Pattern

/**
 * Byte-level BPE (GPT-2, RoBERTa, Phi, and the test suite's decoders) read from a Hugging Face
 * `tokenizer.json`, reproducing the `tokenizers` library: added tokens matched in the raw text
 * ([BpeModel]), then per remaining section the ByteLevel pre-tokenizer (a prefix space when asked,
 * GPT-2's split regex, bytes mapped to printable characters) and BPE merges by rank
 * (`ignore_merges` honoured), then the post-processor's special tokens.
 */
class ByteLevelBpeTokenizer(
    private val model: BpeModel,
    private val addPrefixSpace: Boolean,
    private val useRegex: Boolean
) : FramedTokenizer {
    private val cache = HashMap<String, List<Int>>()
    override val frame: TokenizerFrame get() = model.frame

    override fun section(text: String, start: Int): List<Int> {
        val piece = if (addPrefixSpace && !text.startsWith(" ")) " $text" else text
        return split(piece).flatMap { bpe(it) }
    }

    /** The text of [ids] (byte-level pieces back to UTF-8; special tokens left out unless asked). */
    fun decode(ids: IntArray, skipSpecial: Boolean = true): String {
        val bytes = java.io.ByteArrayOutputStream()
        for (id in ids) {
            if (skipSpecial && id in model.specialIds) continue
            val token = model.idToToken[id] ?: continue
            if (model.isAdded(id)) {
                bytes.write(token.toByteArray(Charsets.UTF_8))
                continue
            }
            for (ch in token) {
                val b = UNICODE_TO_BYTE[ch]
                if (b != null) bytes.write(b) else bytes.write(ch.toString().toByteArray(Charsets.UTF_8))
            }
        }
        return String(bytes.toByteArray(), Charsets.UTF_8)
    }

    private fun split(text: String): List<String> {
        if (!useRegex) return listOf(text)
        val out = ArrayList<String>()
        val m = SPLIT.matcher(text)
        while (m.find()) out.add(m.group())
        return out
    }

    private fun bpe(word: String): List<Int> {
        cache[word]?.let { return it }
        val mapped = StringBuilder()
        for (b in word.toByteArray(Charsets.UTF_8)) mapped.append(BYTE_TO_UNICODE[b.toInt() and 0xff])
        val symbols = mapped.toString()
        val whole = model.vocab[symbols]
        val ids = if (model.ignoreMerges && whole != null) listOf(whole)
        else model.merge(symbols.map { it.toString() }).mapNotNull { model.vocab[it] ?: model.unkId }
        if (cache.size < 50000) cache[word] = ids
        return ids
    }

    companion object {
        /** GPT-2's pre-tokenizer split (what `tokenizers`' ByteLevel uses), Unicode classes for \s. */
        private val SPLIT: Pattern = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS
        )

        /** GPT-2's byte -> printable character table. */
        val BYTE_TO_UNICODE: CharArray = CharArray(256).also { table ->
            var extra = 0
            for (b in 0 until 256) {
                val printable = b in 33..126 || b in 161..172 || b in 174..255
                table[b] = if (printable) b.toChar() else (256 + extra++).toChar()
            }
        }
        private val UNICODE_TO_BYTE: Map<Char, Int> = BYTE_TO_UNICODE.withIndex().associate { it.value to it.index }

        /** Reads `tokenizer.json` (and `tokenizer_config.json` for `model_max_length`). */
        @Suppress("UNCHECKED_CAST")
        fun fromJson(tokenizerJson: String, tokenizerConfigJson: String? = null): ByteLevelBpeTokenizer {
            val root = Json.parse(tokenizerJson) as Map<String, Any?>
            val pre = root["pre_tokenizer"] as? Map<String, Any?>
            val byteLevel = findByteLevel(pre)
            require(byteLevel != null) { "only byte-level BPE is read here (pre_tokenizer ByteLevel); this is ${pre?.get("type")}" }
            return ByteLevelBpeTokenizer(BpeModel.parse(root, tokenizerConfigJson), byteLevel["add_prefix_space"] == true,
                byteLevel["use_regex"] != false)
        }

        /** The ByteLevel pre-tokenizer of [pre] (itself, or inside a Sequence), if any. */
        @Suppress("UNCHECKED_CAST")
        fun findByteLevel(pre: Map<String, Any?>?): Map<String, Any?>? {
            if (pre == null) return null
            if (pre["type"] == "ByteLevel") return pre
            if (pre["type"] == "Sequence") {
                return (pre["pretokenizers"] as List<Any?>).map { it as Map<String, Any?> }.firstOrNull { it["type"] == "ByteLevel" }
            }
            return null
        }
    }
}
