package dev.slimport.core

/** What the app needs of a tokenizer: ids with the model's special tokens, and the padding id. */
interface TextTokenizer {
    /** The id used to pad rows to a common length. */
    val padId: Int

    /** The longest sequence the model takes (`model_max_length` of tokenizer_config.json). */
    val modelMaxLength: Int

    /** Token ids of [text] with the model's special tokens, truncated to [maxLength]. */
    fun encode(text: String, maxLength: Int): IntArray

    /** Token ids and types of the pair ([first], [second]) (a question and its context, say) with the
     *  model's special tokens, the longer text truncated first to fit [maxLength]. */
    fun encodePair(first: String, second: String, maxLength: Int): Encoding
}

/** A tokenizer whose model only splits sections of text into ids, inside a [TokenizerFrame] (added
 *  tokens, post-processor, truncation, padding id) that does the rest. */
interface FramedTokenizer : TextTokenizer {
    /** Added tokens, templates and lengths read from `tokenizer.json` and `tokenizer_config.json`. */
    val frame: TokenizerFrame

    /** Ids of one section of text between added tokens, which starts at offset [start] of its text. */
    fun section(text: String, start: Int): List<Int>

    override val padId: Int get() = frame.padId
    override val modelMaxLength: Int get() = frame.modelMaxLength

    override fun encode(text: String, maxLength: Int): IntArray = frame.encode(text, maxLength, ::section)

    override fun encodePair(first: String, second: String, maxLength: Int): Encoding =
        frame.encodePair(first, second, maxLength, ::section)
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
