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
    /** WordPiece (BERT family), byte-level BPE (GPT-2, RoBERTa, Phi), SentencePiece-style BPE (Llama,
     * TinyLlama) or SentencePiece Unigram (ALBERT), from the bundle's tokenizer files. */
    @Suppress("UNCHECKED_CAST")
    fun fromJson(tokenizerJson: String, tokenizerConfigJson: String? = null): TextTokenizer {
        val root = Json.parse(tokenizerJson) as Map<String, Any?>
        val model = root.obj("model")
        return when {
            model["type"] == "WordPiece" -> WordPieceTokenizer.fromJson(tokenizerJson, tokenizerConfigJson)
            model["type"] == "BPE" && SentencePieceBpeTokenizer.matches(root) ->
                SentencePieceBpeTokenizer.fromJson(tokenizerJson, tokenizerConfigJson)
            model["type"] == "BPE" -> ByteLevelBpeTokenizer.fromJson(tokenizerJson, tokenizerConfigJson)
            model["type"] == "Unigram" -> UnigramTokenizer.fromJson(tokenizerJson, tokenizerConfigJson)
            else -> throw IllegalArgumentException("tokenizer model ${model["type"]} is not read by this app")
        }
    }

    /** Token ids back to text, for the BPE tokenizers decoders use. */
    fun decode(tokenizer: TextTokenizer, ids: IntArray): String = when (tokenizer) {
        is ByteLevelBpeTokenizer -> tokenizer.decode(ids)
        is SentencePieceBpeTokenizer -> tokenizer.decode(ids)
        else -> throw IllegalArgumentException("this tokenizer does not decode generated text")
    }
}
