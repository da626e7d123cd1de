package dev.slimport.core

/** Token ids with the token type (segment) of each: 0 for the first text, 1 for the second of a pair. */
class Encoding(val ids: IntArray, val typeIds: IntArray)

/**
 * How a post-processor lays out one text or a pair of texts around the special tokens, each part with
 * its token type: BERT's pair `[CLS] A [SEP] B [SEP]` has types `0 0 0 1 1`, RoBERTa's
 * `<s> A </s> </s> B </s>` all `0`. Truncation is `tokenizers`' "longest_first", the one
 * `truncation=True` selects: of a pair, the longer text loses tokens first.
 */
class Template(private val parts: List<Part>) {
    /** Special token [ids], or the text [sequence] 0 (A) / 1 (B) when [ids] is null, with its token type. */
    class Part(val ids: IntArray?, val sequence: Int, val typeId: Int)

    private val specials: Int = parts.fold(0) { n, part -> n + (part.ids?.size ?: 0) }

    /** [first] and [second] (the texts' ids, no special tokens) laid out and truncated to [maxLength]. */
    fun encode(first: List<Int>, second: List<Int>, maxLength: Int): Encoding {
        val (n1, n2) = truncatedLengths(first.size, second.size, maxOf(0, maxLength - specials))
        val ids = ArrayList<Int>()
        val types = ArrayList<Int>()
        for (part in parts) {
            val piece = part.ids?.toList() ?: if (part.sequence == 0) first.subList(0, n1) else second.subList(0, n2)
            ids.addAll(piece)
            for (i in piece.indices) types.add(part.typeId)
        }
        return Encoding(ids.toIntArray(), types.toIntArray())
    }

    companion object {
        /** The lengths `tokenizers`' "longest_first" keeps of texts of [a] and [b] tokens for a [budget] of
         *  text tokens: the longer text is cut to what the shorter leaves, and when even that is not
         *  enough each gets half (the longer one the odd token). */
        fun truncatedLengths(a: Int, b: Int, budget: Int): Pair<Int, Int> {
            if (a + b <= budget) return a to b
            val swap = a > b
            var short = if (swap) b else a
            var long = if (short > budget) short else maxOf(short, budget - short)
            if (short + long > budget) {
                short = budget / 2
                long = short + budget % 2
            }
            val first = if (swap) long else short
            val second = if (swap) short else long
            return minOf(a, first) to minOf(b, second)
        }

        /** BERT's layout: `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, the second text and its `[SEP]` of type 1. */
        fun bert(cls: Int, sep: Int): Pair<Template, Template> = Pair(
            Template(listOf(Part(intArrayOf(cls), 0, 0), Part(null, 0, 0), Part(intArrayOf(sep), 0, 0))),
            Template(listOf(Part(intArrayOf(cls), 0, 0), Part(null, 0, 0), Part(intArrayOf(sep), 0, 0),
                Part(null, 1, 1), Part(intArrayOf(sep), 1, 1)))
        )

        /** The single and pair templates of `tokenizer.json`'s post-processor [post]; [id] resolves a token. */
        @Suppress("UNCHECKED_CAST")
        fun parse(post: Map<String, Any?>?, id: (String) -> Int): Pair<Template, Template> =
            when (post?.get("type")) {
                null, "ByteLevel" -> Pair(Template(listOf(Part(null, 0, 0))),
                    Template(listOf(Part(null, 0, 0), Part(null, 1, 1))))
                "BertProcessing" -> bert(idOf(post["cls"]), idOf(post["sep"]))
                "RobertaProcessing" -> {
                    val cls = intArrayOf(idOf(post["cls"]))
                    val sep = intArrayOf(idOf(post["sep"]))
                    Pair(Template(listOf(Part(cls, 0, 0), Part(null, 0, 0), Part(sep, 0, 0))),
                        Template(listOf(Part(cls, 0, 0), Part(null, 0, 0), Part(sep, 0, 0), Part(sep, 0, 0),
                            Part(null, 1, 0), Part(sep, 0, 0))))
                }
                "TemplateProcessing" -> {
                    val specials = post["special_tokens"] as? Map<String, Any?> ?: emptyMap()
                    fun parts(items: Any?): Template = Template((items as List<Any?>).map { item ->
                        val piece = item as Map<String, Any?>
                        val sequence = piece["Sequence"] as? Map<String, Any?>
                        if (sequence != null) {
                            Part(null, if (sequence["id"] == "B") 1 else 0, (sequence["type_id"] as Number).toInt())
                        } else {
                            val special = piece.obj("SpecialToken")
                            val name = special.str("id")
                            val ids = (specials[name] as? Map<String, Any?>)?.get("ids") as? List<Any?>
                            Part(ids?.map { (it as Number).toInt() }?.toIntArray() ?: intArrayOf(id(name)), 0,
                                (special["type_id"] as Number).toInt())
                        }
                    })
                    Pair(parts(post["single"]), parts(post["pair"]))
                }
                "Sequence" -> {
                    val inner = (post["processors"] as List<Any?>).map { it as Map<String, Any?> }
                        .firstOrNull { it["type"] != "ByteLevel" }
                    parse(inner, id)
                }
                else -> throw IllegalArgumentException("post_processor ${post["type"]} is not read")
            }

        /** The id of a `[token, id]` entry of Bert/RobertaProcessing. */
        private fun idOf(entry: Any?): Int = ((entry as List<Any?>)[1] as Number).toInt()
    }
}
