package dev.slimport.core

import java.util.regex.Pattern

/**
 * Byte-level BPE (GPT-2, RoBERTa, Phi, and the test suite's decoders) read from a Hugging Face
 * `tokenizer.json`, reproducing the `tokenizers` library: added tokens matched in the raw text,
 * the ByteLevel pre-tokenizer (GPT-2's split regex, optional prefix space, bytes mapped to printable
 * characters), BPE merges by rank (`ignore_merges` honoured), and the post-processor's special
 * tokens (none/ByteLevel, RobertaProcessing, or a TemplateProcessing `single` template).
 * SentencePiece-style BPE (Metaspace, byte fallback: Llama, TinyLlama) is not read.
 */
class ByteLevelBpeTokenizer(
    private val vocab: Map<String, Int>,
    /** merge pair "a\u0000b" -> rank */
    private val ranks: Map<String, Int>,
    private val addPrefixSpace: Boolean,
    private val useRegex: Boolean,
    private val ignoreMerges: Boolean,
    private val unkId: Int?,
    /** Added tokens matched in the raw text (content -> id), longest first. */
    private val addedTokens: List<Pair<String, Int>>,
    private val specialIds: Set<Int>,
    /** Ids put before and after the text's ids by the post-processor. */
    private val prefixIds: IntArray,
    private val suffixIds: IntArray,
    override val padId: Int,
    override val modelMaxLength: Int
) : TextTokenizer {
    private val idToToken: Map<Int, String> by lazy {
        val reverse = HashMap<Int, String>()
        for ((token, id) in vocab) reverse[id] = token
        for ((token, id) in addedTokens) reverse[id] = token
        reverse
    }
    private val cache = HashMap<String, List<Int>>()

    override fun encode(text: String, maxLength: Int): IntArray {
        val ids = tokenize(text)
        val keep = minOf(ids.size, maxOf(0, maxLength - prefixIds.size - suffixIds.size))
        return prefixIds + ids.subList(0, keep).toIntArray() + suffixIds
    }

    /** Token ids of [text] without the post-processor's special tokens. */
    fun tokenize(text: String): List<Int> {
        val out = ArrayList<Int>()
        var start = 0
        var first = true
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
            if (end > start) {
                var piece = text.substring(start, end)
                if (addPrefixSpace && first && !piece.startsWith(" ")) piece = " $piece"
                for (word in split(piece)) out.addAll(bpe(word))
            }
            first = false
            if (at < 0) break
            out.add(found!!.second)
            start = at + found.first.length
        }
        return out
    }

    /** The text of [ids] (byte-level pieces back to UTF-8; special tokens left out unless asked). */
    fun decode(ids: IntArray, skipSpecial: Boolean = true): String {
        val bytes = java.io.ByteArrayOutputStream()
        for (id in ids) {
            if (skipSpecial && id in specialIds) continue
            val token = idToToken[id] ?: continue
            if (addedTokens.any { it.second == id }) {
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
        val whole = vocab[symbols]
        val ids = if (ignoreMerges && whole != null) listOf(whole) else merge(symbols).mapNotNull { vocab[it] ?: unkId }
        if (cache.size < 50000) cache[word] = ids
        return ids
    }

    private fun merge(symbols: String): List<String> {
        var parts: MutableList<String> = symbols.map { it.toString() }.toMutableList()
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
            val model = root.obj("model")
            require(model["type"] == "BPE") { "tokenizer.json holds a ${model["type"]} model, not BPE" }
            val pre = root["pre_tokenizer"] as? Map<String, Any?>
            val byteLevel = findByteLevel(pre)
            require(byteLevel != null) { "only byte-level BPE is read (pre_tokenizer ByteLevel); this is ${pre?.get("type")}" }
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
            return ByteLevelBpeTokenizer(
                vocab, ranks, byteLevel["add_prefix_space"] == true, byteLevel["use_regex"] != false,
                model["ignore_merges"] == true, unk, addedTokens, specialIds, prefix, suffix, pad, maxLength
            )
        }

        @Suppress("UNCHECKED_CAST")
        private fun findByteLevel(pre: Map<String, Any?>?): Map<String, Any?>? {
            if (pre == null) return null
            if (pre["type"] == "ByteLevel") return pre
            if (pre["type"] == "Sequence") {
                return (pre["pretokenizers"] as List<Any?>).map { it as Map<String, Any?> }.firstOrNull { it["type"] == "ByteLevel" }
            }
            return null
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
