package dev.slimport.sample

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
import android.content.res.AssetManager
import dev.slimport.core.ArtifactEntry
import dev.slimport.core.DecoderCall
import dev.slimport.core.IntTensor
import dev.slimport.core.StepOutput
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.IntBuffer
import java.nio.LongBuffer
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.tensorflow.lite.Interpreter

/** Runs one artifact: int32 inputs by name in, fp32 outputs by name (row-major) out. */
interface ArtifactRunner : AutoCloseable {
    fun run(inputs: Map<String, IntTensor>): Map<String, FloatArray>
}

/** Opens the runner for [entry]'s format, reading the model from the app's assets under [root]. */
fun openRunner(assets: AssetManager, root: String, entry: ArtifactEntry, threads: Int): ArtifactRunner {
    val model = mapAsset(assets, "$root/${entry.folder}/${entry.modelFile}")
    return when (entry.format) {
        "tflite" -> LiteRtRunner(model, threads)
        "onnx" -> OrtRunner(model, entry, threads)
        else -> throw IllegalArgumentException("this app runs tflite and onnx artifacts, not ${entry.format}")
    }
}

/** A decoder artifact's `prefill`/`decode` LiteRT signatures as the core's [DecoderCall] (the cache
 * arrays stay in the core's [dev.slimport.core.Generator]; only T rows come back per call). */
class LiteRtDecoder(assets: AssetManager, root: String, entry: ArtifactEntry, threads: Int) : AutoCloseable {
    private val interpreter = Interpreter(mapAsset(assets, "$root/${entry.folder}/${entry.modelFile}"),
        Interpreter.Options().setNumThreads(threads))

    /** Calls `decode` for one token and `prefill` for a full chunk. */
    val call: DecoderCall = { ids, positions, kCache, vCache ->
        val signature = if (ids.size == 1) "decode" else "prefill"
        val feeds = mapOf<String, Any>("input_ids" to ints(ids), "input_pos" to ints(positions),
            "k_cache" to floats(kCache), "v_cache" to floats(vCache))
        val outputs = runSignature(interpreter, signature, feeds)
        StepOutput(outputs.getValue("logits"), outputs.getValue("k_new"), outputs.getValue("v_new"))
    }

    private fun ints(values: IntArray): ByteBuffer =
        ByteBuffer.allocateDirect(values.size * 4).order(ByteOrder.nativeOrder()).also { it.asIntBuffer().put(values) }

    private fun floats(values: FloatArray): ByteBuffer =
        ByteBuffer.allocateDirect(values.size * 4).order(ByteOrder.nativeOrder()).also { it.asFloatBuffer().put(values) }

    override fun close() = interpreter.close()
}

/** Runs one signature of [interpreter]: every output comes back as fp32, row-major. */
private fun runSignature(interpreter: Interpreter, signature: String, feeds: Map<String, Any>): Map<String, FloatArray> {
    val outputs = HashMap<String, Any>()
    val sizes = HashMap<String, Int>()
    for (name in interpreter.getSignatureOutputs(signature)) {
        val size = interpreter.getOutputTensorFromSignature(name, signature).numElements()
        sizes[name] = size
        outputs[name] = ByteBuffer.allocateDirect(size * 4).order(ByteOrder.nativeOrder())
    }
    interpreter.runSignature(feeds, outputs, signature)
    return outputs.mapValues { (name, buffer) ->
        (buffer as ByteBuffer).rewind()
        FloatArray(sizes.getValue(name)).also { buffer.asFloatBuffer().get(it) }
    }
}

/** Memory-maps an asset (stored uncompressed, see app/build.gradle.kts). */
private fun mapAsset(assets: AssetManager, path: String): MappedByteBuffer {
    assets.openFd(path).use { fd ->
        FileInputStream(fd.fileDescriptor).channel.use { channel ->
            return channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
        }
    }
}

/** LiteRT through the model's `serving_default` signature; XNNPACK is LiteRT's default CPU delegate. */
class LiteRtRunner(model: ByteBuffer, threads: Int) : ArtifactRunner {
    private val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads))
    private val signature = interpreter.signatureKeys.first()

    override fun run(inputs: Map<String, IntTensor>): Map<String, FloatArray> {
        val feeds = HashMap<String, Any>()
        for ((name, tensor) in inputs) {
            val buffer = ByteBuffer.allocateDirect(tensor.data.size * 4).order(ByteOrder.nativeOrder())
            buffer.asIntBuffer().put(tensor.data)
            feeds[name] = buffer  // Android profiles are static: the shape is the one the model was built with
        }
        return runSignature(interpreter, signature, feeds)
    }

    override fun close() = interpreter.close()
}

/** ONNX Runtime; ids are fed as the dtype the manifest's tensor contract names (int32 or int64). */
class OrtRunner(model: ByteBuffer, private val entry: ArtifactEntry, threads: Int) : ArtifactRunner {
    private val env = OrtEnvironment.getEnvironment()
    private val session = env.createSession(model, OrtSession.SessionOptions().apply { setIntraOpNumThreads(threads) })

    override fun run(inputs: Map<String, IntTensor>): Map<String, FloatArray> {
        val shapeOf = { t: IntTensor -> t.shape.map { it.toLong() }.toLongArray() }
        val tensors = inputs.mapValues { (name, t) ->
            if (entry.inputs.first { it.name == name }.dtype == "int64") {
                OnnxTensor.createTensor(env, LongBuffer.wrap(t.data.map { it.toLong() }.toLongArray()), shapeOf(t))
            } else {
                OnnxTensor.createTensor(env, IntBuffer.wrap(t.data), shapeOf(t))
            }
        }
        try {
            session.run(tensors).use { result ->
                return entry.outputs.associate { spec ->
                    val value = result.get(spec.name).get() as OnnxTensor
                    val buffer = value.floatBuffer
                    spec.name to FloatArray(buffer.remaining()).also { buffer.get(it) }
                }
            }
        } finally {
            tensors.values.forEach { it.close() }
        }
    }

    override fun close() = session.close()
}
