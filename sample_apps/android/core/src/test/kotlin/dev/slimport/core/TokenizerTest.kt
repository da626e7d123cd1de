package dev.slimport.core

import java.io.File
import org.junit.Assert.assertEquals
import org.junit.Test

/**
 * The tokenizer layouts the core reads (byte-level BPE, SentencePiece-style BPE, SentencePiece
 * Unigram) against Python's ids and, where given, decoded text. System property `slimport.tokenizers`
 * names a file written by tests/test_apps.py: `{"sets": [{"name", "tokenizer", "config", "max_length",
 * "cases": [...]}]}` (cases as [compare] reads them: texts, and text pairs with their token types).
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

/**
 * How many parity [cases] [tokenizer] reproduces, and the first mismatches. A case is a text
 * (`{"text", "ids", "decoded"?}`, encoded to [maxLength]) or a text pair (`{"text", "pair",
 * "max_length", "ids", "type_ids"}`).
 */
fun compare(tokenizer: TextTokenizer, cases: List<*>, maxLength: Int): Pair<Int, List<String>> {
    var same = 0
    val mismatches = ArrayList<String>()
    fun ints(value: Any?): List<Int> = (value as List<*>).map { (it as Number).toInt() }
    for (case in cases) {
        val c = case as Map<*, *>
        val expected = ints(c["ids"])
        val pair = c["pair"] as String?
        val (got, decoded) = if (pair != null) {
            val encoding = tokenizer.encodePair(c["text"] as String, pair, (c["max_length"] as Number).toInt())
            Pair(encoding.ids.toList() + listOf(-1) + encoding.typeIds.toList(), null)
        } else {
            val ids = tokenizer.encode(c["text"] as String, maxLength)
            Pair(ids.toList(), if (c.containsKey("decoded")) Tokenizers.decode(tokenizer, ids) else null)
        }
        val want = if (pair != null) expected + listOf(-1) + ints(c["type_ids"]) else expected
        if (got == want && decoded == c["decoded"]) same++
        else if (mismatches.size < 3) mismatches.add("${c["text"].toString().take(40)}: $got != $want or '$decoded'")
    }
    return same to mismatches
}
