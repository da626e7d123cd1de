package dev.slimport.core

/** What the app needs of a tokenizer: ids with the model's special tokens, and the padding id. */
interface TextTokenizer {
    /** The id used to pad rows to a common length. */
    val padId: Int

    /** The longest sequence the model takes (`model_max_length` of tokenizer_config.json). */
    val modelMaxLength: Int

    /** Token ids of [text] with the model's special tokens, truncated to [maxLength]. */
    fun encode(text: String, maxLength: Int): IntArray
}

/** Picks the tokenizer implementation from the bundle's `tokenizer.json` model type. */
object Tokenizers {
    /** WordPiece (BERT family) or byte-level BPE (GPT-2, RoBERTa, Phi), from the bundle's tokenizer files. */
    @Suppress("UNCHECKED_CAST")
    fun fromJson(tokenizerJson: String, tokenizerConfigJson: String? = null): TextTokenizer {
        val model = (Json.parse(tokenizerJson) as Map<String, Any?>).obj("model")
        return when (model["type"]) {
            "WordPiece" -> WordPieceTokenizer.fromJson(tokenizerJson, tokenizerConfigJson)
            "BPE" -> ByteLevelBpeTokenizer.fromJson(tokenizerJson, tokenizerConfigJson)
            else -> throw IllegalArgumentException("tokenizer model ${model["type"]} is not read by this app")
        }
    }
}
