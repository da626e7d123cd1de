package dev.slimport.core

/**
 * A small JSON reader for the bundle's files (manifest.json, golden.json, tokenizer.json), so the
 * core needs no library: objects become [Map]s (insertion-ordered), arrays [List]s, numbers
 * [Double] or [Long], plus [String], [Boolean] and null. Non-finite numbers (NaN, Infinity), which
 * Python's json module writes, are accepted.
 */
object Json {
    /** Parses [text]; throws [IllegalArgumentException] with the offset on malformed input. */
    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipSpace()
        if (reader.pos != text.length) reader.fail("trailing characters")
        return value
    }

    private class Reader(val s: String) {
        var pos = 0

        fun fail(message: String): Nothing = throw IllegalArgumentException("JSON: $message at offset $pos")

        fun skipSpace() {
            while (pos < s.length && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t')) pos++
        }

        fun value(): Any? {
            skipSpace()
            if (pos >= s.length) fail("unexpected end")
            return when (val c = s[pos]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                'N' -> literal("NaN", Double.NaN)
                'I' -> literal("Infinity", Double.POSITIVE_INFINITY)
                else -> if (c == '-' || c in '0'..'9') number() else fail("unexpected '$c'")
            }
        }

        fun literal(word: String, result: Any?): Any? {
            if (!s.startsWith(word, pos)) fail("expected $word")
            pos += word.length
            return result
        }

        fun obj(): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            pos++
            skipSpace()
            if (s[pos] == '}') { pos++; return out }
            while (true) {
                skipSpace()
                if (s[pos] != '"') fail("expected a key")
                val key = string()
                skipSpace()
                if (s[pos] != ':') fail("expected ':'")
                pos++
                out[key] = value()
                skipSpace()
                when (s[pos]) {
                    ',' -> pos++
                    '}' -> { pos++; return out }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun array(): List<Any?> {
            val out = ArrayList<Any?>()
            pos++
            skipSpace()
            if (s[pos] == ']') { pos++; return out }
            while (true) {
                out.add(value())
                skipSpace()
                when (s[pos]) {
                    ',' -> pos++
                    ']' -> { pos++; return out }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        fun string(): String {
            val out = StringBuilder()
            pos++
            while (true) {
                if (pos >= s.length) fail("unterminated string")
                val c = s[pos++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        when (val e = s[pos++]) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000C')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> { out.append(s.substring(pos, pos + 4).toInt(16).toChar()); pos += 4 }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        fun number(): Any {
            val start = pos
            if (s[pos] == '-') {
                pos++
                if (s.startsWith("Infinity", pos)) { pos += 8; return Double.NEGATIVE_INFINITY }
            }
            var integral = true
            while (pos < s.length) {
                val c = s[pos]
                if (c in '0'..'9') pos++
                else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integral = false; pos++ }
                else break
            }
            val token = s.substring(start, pos)
            return if (integral && token.length < 19) token.toLong() else token.toDouble()
        }
    }
}

/** The map at [key] of a JSON object. */
@Suppress("UNCHECKED_CAST")
fun Map<String, Any?>.obj(key: String): Map<String, Any?> =
    this[key] as? Map<String, Any?> ?: throw IllegalArgumentException("'$key' is missing or not an object")

/** The list at [key] of a JSON object. */
@Suppress("UNCHECKED_CAST")
fun Map<String, Any?>.list(key: String): List<Any?> =
    this[key] as? List<Any?> ?: throw IllegalArgumentException("'$key' is missing or not a list")

/** The string at [key] of a JSON object. */
fun Map<String, Any?>.str(key: String): String =
    this[key] as? String ?: throw IllegalArgumentException("'$key' is missing or not a string")

/** The integer at [key] of a JSON object. */
fun Map<String, Any?>.int(key: String): Int =
    (this[key] as? Number)?.toInt() ?: throw IllegalArgumentException("'$key' is missing or not a number")
