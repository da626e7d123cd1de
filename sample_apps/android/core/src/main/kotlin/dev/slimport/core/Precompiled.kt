package dev.slimport.core

/**
 * SentencePiece's precompiled normalization map (`Precompiled` normalizer of ALBERT, T5 and XLM-R
 * `tokenizer.json`s), read as the `tokenizers` library reads it: a little-endian u32 byte size, a
 * darts-clone double-array trie over UTF-8 keys, then the NUL-separated replacement strings.
 *
 * The lookup keeps the library's quirk on purpose: a grapheme cluster under 6 UTF-8 bytes whose bytes
 * *start with* a key is replaced whole by the first (shortest) key's replacement; any other cluster
 * is looked up one character at a time.
 */
class Precompiled(charsmap: ByteArray) {
    private val trie: IntArray
    private val normalized: ByteArray

    init {
        val size = le32(charsmap, 0)
        require(size % 4 == 0 && 4 + size <= charsmap.size) { "precompiled_charsmap is truncated" }
        trie = IntArray(size / 4) { le32(charsmap, 4 + 4 * it) }
        normalized = charsmap.copyOfRange(4 + size, charsmap.size)
    }

    /** [text] with every grapheme cluster mapped as described above. */
    fun normalize(text: String): String {
        val out = StringBuilder(text.length)
        var i = 0
        while (i < text.length) {
            val end = Graphemes.clusterEnd(text, i)
            val cluster = text.substring(i, end)
            val whole = if (cluster.toByteArray(Charsets.UTF_8).size < 6) transform(cluster) else null
            if (whole != null) out.append(whole)
            else {
                var j = 0
                while (j < cluster.length) {
                    val n = Character.charCount(cluster.codePointAt(j))
                    val part = cluster.substring(j, j + n)
                    out.append(transform(part) ?: part)
                    j += n
                }
            }
            i = end
        }
        return out.toString()
    }

    /** The replacement of the shortest key [chunk] starts with, or null when none does. */
    fun transform(chunk: String): String? {
        val key = chunk.toByteArray(Charsets.UTF_8)
        var node = offset(trie[0])
        for (b in key) {
            val c = b.toInt() and 0xff
            if (c == 0) break
            node = node xor c
            if (node >= trie.size) return null
            val unit = trie[node]
            if (label(unit) != c) return null
            node = node xor offset(unit)
            if (hasLeaf(unit)) {
                val start = trie[node] and 0x7fffffff
                var end = start
                while (end < normalized.size && normalized[end] != 0.toByte()) end++
                return String(normalized, start, end - start, Charsets.UTF_8)
            }
        }
        return null
    }

    private companion object {
        fun le32(b: ByteArray, at: Int): Int =
            (b[at].toInt() and 0xff) or ((b[at + 1].toInt() and 0xff) shl 8) or
                ((b[at + 2].toInt() and 0xff) shl 16) or ((b[at + 3].toInt() and 0xff) shl 24)

        fun offset(unit: Int): Int = (unit ushr 10) shl ((unit and (1 shl 9)) ushr 6)
        fun label(unit: Int): Int = unit and ((1 shl 31) or 0xff)
        fun hasLeaf(unit: Int): Boolean = ((unit ushr 8) and 1) == 1
    }
}

/**
 * Extended grapheme cluster ends (Unicode UAX #29) as far as [Precompiled] can tell them apart: it
 * treats a cluster specially only under 6 UTF-8 bytes, so the rules that can join such short
 * clusters are the ones kept (CR LF; marks, ZWJ and emoji modifiers extending; controls breaking).
 * Longer sequences the full rules would join (emoji ZWJ sequences, flags, Hangul jamo) come out as
 * single characters here, which the per-character path maps the same way.
 */
object Graphemes {
    /** The end (exclusive, UTF-16 index) of the cluster starting at [start] of [text]. */
    fun clusterEnd(text: String, start: Int): Int {
        val first = text.codePointAt(start)
        var end = start + Character.charCount(first)
        if (first == 0x0D) return if (end < text.length && text[end] == '\n') end + 1 else end
        if (isControl(first)) return end
        while (end < text.length) {
            val cp = text.codePointAt(end)
            if (!extends(cp)) break
            end += Character.charCount(cp)
        }
        return end
    }

    private fun extends(cp: Int): Boolean = when (Character.getType(cp).toByte()) {
        Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK -> true
        else -> cp == 0x200C || cp == 0x200D || cp in 0x1F3FB..0x1F3FF || cp in 0xE0020..0xE007F ||
            cp == 0xFF9E || cp == 0xFF9F || cp == 0x0E33 || cp == 0x0EB3
    }

    private fun isControl(cp: Int): Boolean = cp == 0x0A || when (Character.getType(cp).toByte()) {
        Character.CONTROL, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> true
        Character.FORMAT -> cp != 0x200C && cp != 0x200D
        else -> false
    }
}
