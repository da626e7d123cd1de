package dev.slimport.core

import java.io.File

/** One tensor of an artifact's contract: name, dtype and shape (ints, or a string such as "2..512"). */
data class TensorSpec(val name: String, val dtype: String, val shape: List<Any?>)

/** The device profile an artifact was built and judged for (the fields an app needs). */
data class Profile(val name: String, val batch: Int, val seqLen: Int, val staticShape: Boolean, val inputDtype: String)

/** One artifact of a bundle, as `manifest.json` describes it. Paths are relative to the bundle. */
data class ArtifactEntry(
    val model: String,
    val task: String,
    val target: String,
    val format: String,
    val folder: String,
    val modelFile: String,
    val labels: List<String>?,
    val profile: Profile,
    val inputs: List<TensorSpec>,
    val outputs: List<TensorSpec>,
    val tokenizerFiles: List<String>,
    val golden: String,
    val passed: Boolean
) {
    /** The bundle-relative path of the tokenizer file called [name] (e.g. "tokenizer.json"), if shipped. */
    fun tokenizerFile(name: String): String? = tokenizerFiles.firstOrNull { it.substringAfterLast('/') == name }
}

/** A slimport release bundle's `manifest.json`: everything model-specific the app reads. */
class Manifest(val name: String, val version: String, val passed: Boolean, val artifacts: List<ArtifactEntry>) {
    /** The first artifact in [format] (e.g. "tflite", "onnx", "coreml"), optionally for [model]. */
    fun find(format: String, model: String? = null): ArtifactEntry? =
        artifacts.firstOrNull { it.format == format && (model == null || it.model == model) }

    companion object {
        /** Field names read from each artifact entry; a test checks them against the manifest schema. */
        val ARTIFACT_FIELDS = listOf(
            "model", "task", "target", "format", "folder", "model_file", "labels", "profile", "inputs",
            "outputs", "tokenizer_files", "golden", "passed"
        )

        /** Field names read from an entry's profile. */
        val PROFILE_FIELDS = listOf("name", "batch", "seq_len", "static_shape", "input_dtype")

        /** Parses the text of a `manifest.json`. */
        @Suppress("UNCHECKED_CAST")
        fun parse(text: String): Manifest {
            val root = Json.parse(text) as Map<String, Any?>
            val release = root.obj("release")
            val artifacts = root.list("artifacts").map { entry(it as Map<String, Any?>) }
            return Manifest(release.str("name"), release.str("version"), root["passed"] == true, artifacts)
        }

        /** Reads `manifest.json` from the bundle folder [bundle]. */
        fun read(bundle: File): Manifest = parse(File(bundle, "manifest.json").readText(Charsets.UTF_8))

        @Suppress("UNCHECKED_CAST")
        private fun tensors(items: List<Any?>): List<TensorSpec> = items.map {
            val t = it as Map<String, Any?>
            TensorSpec(t.str("name"), t.str("dtype"), t.list("shape"))
        }

        @Suppress("UNCHECKED_CAST")
        private fun entry(e: Map<String, Any?>): ArtifactEntry {
            val p = e.obj("profile")
            val profile = Profile(p.str("name"), p.int("batch"), p.int("seq_len"), p["static_shape"] == true,
                p.str("input_dtype"))
            val tokenizer = e.list("tokenizer_files").map { (it as Map<String, Any?>).str("path") }
            return ArtifactEntry(
                e.str("model"), e.str("task"), e.str("target"), e.str("format"), e.str("folder"), e.str("model_file"),
                (e["labels"] as? List<Any?>)?.map { it.toString() }, profile, tensors(e.list("inputs")),
                tensors(e.list("outputs")), tokenizer, e.str("golden"), e["passed"] == true
            )
        }
    }
}
