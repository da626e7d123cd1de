package dev.slimport.core

import java.text.Normalizer
import java.util.Base64

/** One step of a `tokenizer.json` normalizer: text in, text out. */
typealias TextNormalizer = (String) -> String

/**
 * The `tokenizers` library's normalizers that SentencePiece-converted tokenizers use (ALBERT: quote
 * Replaces, NFKD, StripAccents, Lowercase, Precompiled, a Replace of runs of spaces; XLM-R and T5:
 * Precompiled and the Replace), read from `tokenizer.json`'s `normalizer`.
 */
object Normalizers {
    /** The normalizer [spec] describes (null: none); throws for a type this core does not read. */
    @Suppress("UNCHECKED_CAST")
    fun parse(spec: Map<String, Any?>?): TextNormalizer {
        if (spec == null) return step { it }
        return when (val type = spec["type"]) {
            "Sequence" -> {
                val steps = (spec["normalizers"] as List<Any?>).map { parse(it as Map<String, Any?>) }
                step { text -> steps.fold(text) { s, f -> f(s) } }
            }
            "Replace" -> {
                val pattern = spec["pattern"] as Map<String, Any?>
                val content = spec.str("content")
                val literal = pattern["String"] as? String
                if (literal != null) step { it.replace(literal, content) }
                else {
                    val regex = Regex(pattern.str("Regex"))
                    step { it.replace(regex, Regex.escapeReplacement(content)) }
                }
            }
            "NFC" -> step { Normalizer.normalize(it, Normalizer.Form.NFC) }
            "NFD" -> step { Normalizer.normalize(it, Normalizer.Form.NFD) }
            "NFKC" -> step { Normalizer.normalize(it, Normalizer.Form.NFKC) }
            "NFKD" -> step { Normalizer.normalize(it, Normalizer.Form.NFKD) }
            "Lowercase" -> step { text -> mapCodePoints(text) { Unicode.lowercase(it) } }
            "StripAccents" -> step { text -> mapCodePoints(text) { if (isMark(it)) "" else codePoint(it) } }
            "Strip" -> {
                val left = spec["strip_left"] != false
                val right = spec["strip_right"] != false
                step { text -> strip(text, left, right) }
            }
            "Prepend" -> {
                val prefix = spec.str("prepend")
                step { if (it.length == 0) it else prefix + it }
            }
            "Precompiled" -> {
                val charsmap = spec["precompiled_charsmap"] as? String
                if (charsmap.isNullOrEmpty()) step { it }
                else {
                    val map = Precompiled(Base64.getDecoder().decode(charsmap))
                    step { map.normalize(it) }
                }
            }
            else -> throw IllegalArgumentException("normalizer $type is not read by this app")
        }
    }

    private fun step(f: (String) -> String): TextNormalizer = f

    /** General category Mark (Mn, Mc, Me): what the library's StripAccents removes. */
    private fun isMark(cp: Int): Boolean = when (Character.getType(cp).toByte()) {
        Character.NON_SPACING_MARK, Character.COMBINING_SPACING_MARK, Character.ENCLOSING_MARK -> true
        else -> false
    }

    private fun strip(text: String, left: Boolean, right: Boolean): String {
        var start = 0
        var end = text.length
        if (left) while (start < end && Unicode.isWhitespace(text.codePointAt(start))) start += Character.charCount(text.codePointAt(start))
        if (right) while (end > start && Unicode.isWhitespace(text.codePointBefore(end))) end -= Character.charCount(text.codePointBefore(end))
        return text.substring(start, end)
    }

    private fun codePoint(cp: Int): String = String(Character.toChars(cp))

    /** [s] with each code point replaced by [f] of it. */
    fun mapCodePoints(s: String, f: (Int) -> String): String {
        val out = StringBuilder(s.length)
        var i = 0
        while (i < s.length) {
            val cp = s.codePointAt(i)
            out.append(f(cp))
            i += Character.charCount(cp)
        }
        return out.toString()
    }
}
