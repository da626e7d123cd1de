package dev.slimport.core

import java.io.File
import org.junit.Assert.assertEquals
import org.junit.Test

/**
 * The tokenizer layouts the core reads (byte-level BPE, SentencePiece-style BPE, SentencePiece
 * Unigram) against Python's ids and, where given, decoded text. System property `slimport.tokenizers`
 * names a file written by tests/test_apps.py: `{"sets": [{"name", "tokenizer", "config", "max_length",
 * "cases": [{"text", "ids", "decoded"?}]}]}`.
 */
class TokenizerTest {
    @Test
    fun everyLayoutMatchesPythonIdsAndDecoding() {
        val parity = Json.parse(File(System.getProperty("slimport.tokenizers")).readText()) as Map<*, *>
        for (set in parity["sets"] as List<*>) {
            val s = set as Map<*, *>
            val tokenizer = Tokenizers.fromJson(File(s["tokenizer"] as String).readText(),
                File(s["config"] as String).readText())
            val cases = s["cases"] as List<*>
            val (same, mismatches) = compare(tokenizer, cases, (s["max_length"] as Number).toInt())
            println("parity ${s["name"]}: $same/${cases.size} texts identical")
            assertEquals(mismatches.joinToString("\n"), cases.size, same)
        }
    }
}

/** How many parity [cases] (`{"text", "ids", "decoded"?}`) [tokenizer] reproduces, and the first mismatches. */
fun compare(tokenizer: TextTokenizer, cases: List<*>, maxLength: Int): Pair<Int, List<String>> {
    var same = 0
    val mismatches = ArrayList<String>()
    for (case in cases) {
        val c = case as Map<*, *>
        val expected = (c["ids"] as List<*>).map { (it as Number).toInt() }
        val got = tokenizer.encode(c["text"] as String, maxLength)
        val decoded = if (c.containsKey("decoded")) Tokenizers.decode(tokenizer, got) else null
        if (got.toList() == expected && decoded == c["decoded"]) same++
        else if (mismatches.size < 3) mismatches.add("${c["text"].toString().take(40)}: ${got.toList()} != $expected or '$decoded'")
    }
    return same to mismatches
}
