package dev.slimport.core

import java.io.File
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The core against a real bundle (system property `slimport.bundle`) and, for tokenizer parity, a
 * file of texts with the ids Python's tokenizer gives them (`slimport.parity`, written by
 * tests/test_apps.py: `{"max_length": n, "cases": [{"text": ..., "ids": [...]}]}`).
 */
class CoreTest {
    private val bundle = File(System.getProperty("slimport.bundle") ?: error("set -Dslimport.bundle=<bundle folder>"))
    private val manifest = Manifest.read(bundle)

    private fun tokenizerOf(entry: ArtifactEntry): TextTokenizer {
        val json = File(bundle, entry.tokenizerFile("tokenizer.json")!!).readText()
        val config = entry.tokenizerFile("tokenizer_config.json")?.let { File(bundle, it).readText() }
        return Tokenizers.fromJson(json, config)
    }

    private fun golden(entry: ArtifactEntry): Golden = Golden.parse(File(bundle, entry.golden).readText())

    @Test
    fun manifestIsRead() {
        assertTrue(manifest.artifacts.isNotEmpty())
        for (entry in manifest.artifacts) {
            assertTrue(entry.inputs.any { it.name == "input_ids" && it.dtype == "int32" })
            assertTrue(entry.outputs.isNotEmpty())
            assertTrue(File(bundle, "${entry.folder}/${entry.modelFile}").exists())
            if (entry.task == "text-classification") assertTrue(entry.labels!!.isNotEmpty())
        }
    }

    @Test
    fun tokenizerMatchesPythonOnEveryText() {
        val parity = Json.parse(File(System.getProperty("slimport.parity")).readText()) as Map<*, *>
        val maxLength = (parity["max_length"] as Number).toInt()
        val cases = parity["cases"] as List<*>
        val (same, mismatches) = compare(tokenizerOf(manifest.artifacts.first()), cases, maxLength)
        println("tokenizer parity: $same/${cases.size} texts identical")
        assertEquals(mismatches.joinToString("\n"), cases.size, same)
    }

    @Test
    fun builtInputsMatchTheGoldenInputsExactly() {
        for (entry in manifest.artifacts) {
            val builder = InputBuilder(entry, tokenizerOf(entry))
            for (vector in golden(entry).vectors) {
                val built = vector.build(builder)
                assertEquals("${entry.target}: input names", vector.inputs.keys, built.keys)
                for ((name, tensor) in vector.inputs) {
                    assertEquals("${entry.target} ${vector.text.take(20)} $name shape",
                        tensor.shape.toList(), built.getValue(name).shape.toList())
                    assertTrue("${entry.target} ${vector.text.take(20)} $name", tensor == built.getValue(name))
                }
            }
        }
    }

    @Test
    fun selfTestPassesOnPyTorchOutputsAndFailsBeyondTolerance() {
        for (entry in manifest.artifacts) {
            val vectors = golden(entry)
            val builder = InputBuilder(entry, tokenizerOf(entry))
            fun lookup(inputs: Map<String, IntTensor>) = vectors.vectors.first { it.inputs == inputs }.outputs
            val exact = vectors.selfTest({ lookup(it) }, builder)
            assertTrue(exact.toString(), exact.passed)
            val shifted = vectors.selfTest({ inputs ->
                lookup(inputs).mapValues { (name, v) -> FloatArray(v.size) { v[it] + 3f * vectors.atol.getValue(name).toFloat() } }
            })
            assertFalse(shifted.passed)
            assertTrue(shifted.problems.first(), shifted.problems.first().contains("tolerance"))
            val missing = vectors.selfTest({ emptyMap() })
            assertFalse(missing.passed)
        }
    }

    @Test
    fun decodingGivesEmbeddingsAndLabels() {
        val embedder = manifest.artifacts.first { it.task == "feature-extraction" }
        val vector = golden(embedder).vectors.first()
        val hidden = vector.outputs.getValue("last_hidden_state")
        val size = vector.shapes.getValue("last_hidden_state").last()
        val mask = vector.inputs.getValue("attention_mask").data
        val pooled = Decode.meanPooled(hidden, mask, size)
        assertEquals(1.0, Decode.cosine(pooled, pooled), 1e-9)
        val classifier = manifest.artifacts.first { it.task == "text-classification" }
        val logits = golden(classifier).vectors.first().outputs.getValue("logits")
        val scored = Decode.classify(logits, classifier.labels)
        assertEquals(1.0, scored.sumByDouble { it.score }, 1e-9)
        assertTrue(scored.first().label in classifier.labels!!)
    }

    @Test
    fun jsonReaderHandlesEscapesAndNonFiniteNumbers() {
        val parsed = Json.parse("{\"a\": [1, -2.5e3, NaN, -Infinity], \"s\": \"\\u00e9\\ud83c\\udf7a\\n\"}") as Map<*, *>
        val list = parsed["a"] as List<*>
        assertEquals(1L, list[0])
        assertEquals(-2500.0, list[1])
        assertTrue((list[2] as Double).isNaN())
        assertEquals("é🍺\n", parsed["s"])
    }
}
