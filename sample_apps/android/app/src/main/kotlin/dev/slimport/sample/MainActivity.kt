package dev.slimport.sample

import android.app.Activity
import android.os.Bundle
import android.os.SystemClock
import android.text.InputType
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import dev.slimport.core.ArtifactEntry
import dev.slimport.core.Decode
import dev.slimport.core.Golden
import dev.slimport.core.InputBuilder
import dev.slimport.core.IntTensor
import dev.slimport.core.Manifest
import dev.slimport.core.TextTokenizer
import dev.slimport.core.CacheGeometry
import dev.slimport.core.GenerationGolden
import dev.slimport.core.Generator
import dev.slimport.core.Tokenizers
import java.util.concurrent.Executors

/**
 * Type a sentence, see the task's answer and the on-device latency. Everything model-specific comes
 * from the bundle's manifest.json (assets/bundle/): tensor names, dtypes, shapes, max length,
 * labels, tokenizer files. At start-up the golden vectors run through the model: PASS/FAIL and the
 * largest error show on screen, so a release is checked on a real phone in one tap. A decoder bundle
 * (text-generation, LiteRT) generates 32 tokens greedily from the typed prompt and shows decode tokens/s.
 */
class MainActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor()
    private lateinit var status: TextView
    private lateinit var answer: TextView
    private lateinit var app: LoadedBundle

    private var decoder: LoadedDecoder? = null

    /** A decoder artifact (LiteRT) with its tokenizer, generator and golden prompts. */
    class LoadedDecoder(
        val entry: ArtifactEntry,
        val tokenizer: TextTokenizer,
        val generator: Generator,
        val runner: LiteRtDecoder,
        val golden: GenerationGolden
    )

    /** The artifact this app runs, with its tokenizer, input builder and runner. */
    class LoadedBundle(val entry: ArtifactEntry, val builder: InputBuilder, val runner: ArtifactRunner, val golden: Golden)

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val input = EditText(this).apply {
            hint = "Type a sentence"
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE
        }
        val run = Button(this).apply { text = "Run" }
        status = TextView(this)
        answer = TextView(this).apply { textSize = 16f }
        val column = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            setPadding(32, 48, 32, 32)
            listOf(status, input, run, answer).forEach { addView(it, LinearLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT)) }
        }
        setContentView(ScrollView(this).apply { addView(column) })
        status.text = "Loading bundle…"
        worker.execute {
            val line = try {
                if (isDecoderBundle()) {
                    decoder = loadDecoder()
                    val d = decoder!!
                    "${d.entry.model} · ${d.entry.target} (decoder)\nGolden self-test: ${d.golden.selfTest(d.generator, d.tokenizer)}"
                } else {
                    app = load()
                    val result = app.golden.selfTest({ app.runner.run(it) }, app.builder)
                    "${app.entry.model} · ${app.entry.target} (${app.entry.format})\nGolden self-test: $result"
                }
            } catch (e: Exception) {
                "Cannot load the bundle: ${e.message}"
            }
            runOnUiThread { status.text = line }
        }
        run.setOnClickListener {
            val text = input.text.toString()
            worker.execute {
                val shown = try {
                    decoder?.let { generate(it, text) } ?: answerFor(text)
                } catch (e: Exception) {
                    "Error: ${e.message}"
                }
                runOnUiThread { answer.text = shown }
            }
        }
    }

    private fun asset(path: String): String = assets.open("$ROOT/$path").bufferedReader(Charsets.UTF_8).use { it.readText() }

    private fun load(): LoadedBundle {
        val manifest = Manifest.parse(asset("manifest.json"))
        val entry = manifest.find("tflite") ?: manifest.find("onnx")
            ?: throw IllegalStateException("the bundle has no tflite or onnx artifact")
        val tokenizer = Tokenizers.fromJson(
            asset(entry.tokenizerFile("tokenizer.json") ?: throw IllegalStateException("no tokenizer.json in the bundle")),
            entry.tokenizerFile("tokenizer_config.json")?.let { asset(it) }
        )
        val runner = openRunner(assets, ROOT, entry, threads = 4)
        return LoadedBundle(entry, InputBuilder(entry, tokenizer), runner, Golden.parse(asset(entry.golden)))
    }

    private fun isDecoderBundle(): Boolean = Manifest.parse(asset("manifest.json")).artifacts.any { it.task == "text-generation" }

    private fun loadDecoder(): LoadedDecoder {
        val entry = Manifest.parse(asset("manifest.json")).artifacts
            .firstOrNull { it.task == "text-generation" && it.format == "tflite" }
            ?: throw IllegalStateException("this app generates with LiteRT decoders; the bundle has none")
        val tokenizer = Tokenizers.fromJson(
            asset(entry.tokenizerFile("tokenizer.json") ?: throw IllegalStateException("no tokenizer.json in the bundle")),
            entry.tokenizerFile("tokenizer_config.json")?.let { asset(it) }
        )
        val runner = LiteRtDecoder(assets, ROOT, entry, threads = 4)
        val vocab = (entry.outputs.first { it.name == "logits" }.shape.last() as Number).toInt()
        val generator = Generator(CacheGeometry.of(entry), vocab, runner.call)
        return LoadedDecoder(entry, tokenizer, generator, runner, GenerationGolden.parse(asset(entry.golden)))
    }

    private fun generate(d: LoadedDecoder, text: String): String {
        val geometry = CacheGeometry.of(d.entry)
        val prompt = d.tokenizer.encode(text, geometry.context - NEW_TOKENS)
        val start = SystemClock.elapsedRealtimeNanos()
        var first = start
        val tokens = d.generator.generate(prompt, NEW_TOKENS) { first = SystemClock.elapsedRealtimeNanos() }
        val decodeS = (SystemClock.elapsedRealtimeNanos() - first) / 1e9
        return Tokenizers.decode(d.tokenizer, tokens) + "\n\nTime to first token: %.1f ms · decode %.1f tokens/s".format(
            (first - start) / 1e6, (NEW_TOKENS - 1) / decodeS)
    }

    private fun timed(texts: List<String>): Pair<Map<String, FloatArray>, Double> = timed(app.builder.build(texts))

    private fun timed(inputs: Map<String, IntTensor>): Pair<Map<String, FloatArray>, Double> {
        val start = SystemClock.elapsedRealtimeNanos()
        val outputs = app.runner.run(inputs)
        return outputs to (SystemClock.elapsedRealtimeNanos() - start) / 1e6
    }

    private fun answerFor(text: String): String = when (app.entry.task) {
        "feature-extraction" -> {
            val hiddenSize = (app.entry.outputs.first().shape.last() as Number).toInt()
            fun embed(t: String): Pair<DoubleArray, Double> {
                val (out, ms) = timed(listOf(t))
                val mask = app.builder.build(listOf(t)).getValue("attention_mask").data
                return Decode.meanPooled(out.getValue("last_hidden_state"), mask, hiddenSize) to ms
            }
            val (query, ms) = embed(text)
            val ranked = SENTENCES.map { it to Decode.cosine(query, embed(it).first) }.sortedByDescending { it.second }
            "Most similar (cosine):\n" + ranked.joinToString("\n") { "%.3f  %s".format(it.second, it.first) } +
                "\n\nLatency: %.1f ms".format(ms)
        }
        "text-classification" -> {
            val (out, ms) = timed(listOf(text))
            val best = Decode.classify(out.getValue("logits"), app.entry.labels).first()
            "${best.label} (%.3f)\n\nLatency: %.1f ms".format(best.score, ms)
        }
        "question-answering" -> {
            // the typed text is the question, asked of a built-in passage: a pair, as validation fed the model
            val (out, ms) = timed(app.builder.buildPairs(listOf(text to PASSAGE)))
            val start = Decode.argmax(out.getValue("start_logits"))
            val end = Decode.argmax(out.getValue("end_logits"))
            "Passage: $PASSAGE\n\nAnswer: input tokens $start to $end\n\n" + "Latency: %.1f ms".format(ms)
        }
        else -> {
            val (out, ms) = timed(listOf(text))
            "Outputs: " + out.entries.joinToString { "${it.key} (${it.value.size} values)" } + "\n\nLatency: %.1f ms".format(ms)
        }
    }

    override fun onDestroy() {
        worker.execute {
            if (::app.isInitialized) app.runner.close()
            decoder?.runner?.close()
        }
        worker.shutdown()
        super.onDestroy()
    }

    companion object {
        const val ROOT = "bundle"
        const val NEW_TOKENS = 32
        val SENTENCES = listOf(
            "The weather is lovely today.",
            "A man is playing a guitar.",
            "The new phone has a great camera.",
            "Stock markets fell sharply on Monday.",
            "Ich habe Hunger."
        )
        const val PASSAGE = "The Eiffel Tower was finished in 1889 for the World's Fair in Paris. It is 330 metres " +
            "tall and was the tallest structure in the world until 1930."
    }
}
