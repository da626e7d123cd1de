package dev.slimport.core

import java.io.File
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * Decoder support of the core: the cache geometry of a decoder bundle's artifacts
 * (`slimport.decoder_bundle`), its generation golden, and the generator's cache bookkeeping. The BPE
 * tokenizers decoders use are checked against Python in [TokenizerTest].
 */
class DecoderTest {
    @Test
    fun decoderArtifactsDescribeTheirCache() {
        val bundle = File(System.getProperty("slimport.decoder_bundle"))
        val manifest = Manifest.read(bundle)
        assertTrue(manifest.artifacts.isNotEmpty())
        for (entry in manifest.artifacts) {
            assertEquals("text-generation", entry.task)
            assertEquals(listOf("input_ids", "input_pos", "k_cache", "v_cache"), entry.inputs.map { it.name })
            assertEquals(setOf("logits", "k_new", "v_new"), entry.outputs.map { it.name }.toSet())
            val geometry = CacheGeometry.of(entry)
            assertEquals(128, geometry.prefillLen)
            assertEquals(256, geometry.context)
            assertTrue(geometry.layers == 2 && geometry.kvHeads > 0 && geometry.headDim > 0)
        }
    }

    @Test
    fun decoderGoldenParsesAndItsSelfTestCatchesAWrongModel() {
        val bundle = File(System.getProperty("slimport.decoder_bundle"))
        val entry = Manifest.read(bundle).artifacts.first()
        val text = File(bundle, entry.golden).readText()
        assertTrue(GenerationGolden.isGeneration(text))
        val golden = GenerationGolden.parse(text)
        assertTrue(golden.vectors.isNotEmpty() && golden.newTokens > 0 && golden.atol > 0)
        val tokenizer = Tokenizers.fromJson(File(bundle, entry.tokenizerFile("tokenizer.json")!!).readText(),
            File(bundle, entry.tokenizerFile("tokenizer_config.json")!!).readText())
        for (vector in golden.vectors) {
            assertArrayEquals(vector.text, vector.inputIds, tokenizer.encode(vector.text, tokenizer.modelMaxLength))
        }
        val geometry = CacheGeometry.of(entry)
        val vocab = golden.vectors.first().lastLogits.size
        val result = golden.selfTest(Generator(geometry, vocab, fake(geometry, vocab)), tokenizer)
        assertTrue(!result.passed && result.problems.first().contains("last_logits differ"))
    }

    /** A stand-in model that really uses the cache: each token's key is id + 1, and a row's logits peak at
     * (sum of the keys it can see) mod vocab, seeing cache slots before the call's first position and the
     * call's rows up to its own. Greedy output then depends on every cache write and mask rule. */
    private fun fake(geometry: CacheGeometry, vocab: Int): DecoderCall = { ids, positions, kCache, _ ->
        val tokens = ids.size
        var past = 0f
        for (slot in 0 until positions[0]) past += kCache[slot]
        val logits = FloatArray(tokens * vocab)
        var running = past
        for (t in 0 until tokens) {
            running += ids[t] + 1
            logits[t * vocab + (Math.round(running) % vocab)] = 1f
        }
        val new = FloatArray(geometry.layers * geometry.kvHeads * tokens * geometry.headDim)
        for (t in 0 until tokens) new[t] = (ids[t] + 1).toFloat()
        StepOutput(logits, new, new.copyOf())
    }

    @Test
    fun generatorFeedsChunksAndWritesTheCacheLikeTheValidationRunner() {
        val vocab = 97
        val prompt = IntArray(23) { (it * 7 + 3) % vocab }
        // the true continuation: next = (sum of (id + 1) over everything so far) mod vocab
        val expected = IntArray(12)
        var sum = prompt.sumBy { it + 1 }
        for (i in expected.indices) {
            expected[i] = sum % vocab
            sum += expected[i] + 1
        }
        for (prefill in intArrayOf(1, 4, 8, 23, 64)) {
            val geometry = CacheGeometry(1, 1, 40, 1, prefill)
            val got = Generator(geometry, vocab, fake(geometry, vocab)).generate(prompt, 12)
            assertArrayEquals("prefill length $prefill", expected, got)
        }
        val small = CacheGeometry(1, 1, 30, 1, 8)
        try {
            Generator(small, vocab, fake(small, vocab)).generate(prompt, 12)
            fail("a prompt and generation beyond the cache must be refused")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("holds 30 tokens"))
        }
    }
}
