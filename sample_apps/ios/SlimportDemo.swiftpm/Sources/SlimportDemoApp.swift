import SlimportCore
import SwiftUI

@main
struct SlimportDemoApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}

/// The bundle's Core ML artifact with its tokenizer and golden vectors, loaded from the app's resources.
@MainActor
final class DemoModel: ObservableObject {
    @Published var status = "Loading bundle…"
    @Published var answer = ""
    private var entry: ArtifactEntry?
    private var builder: InputBuilder?
    private var runner: CoreMLRunner?
    private var generator: Generator?
    private var bpe: GenerationTokenizer?
    private var context = 0
    static let newTokens = 32

    static let sentences = [
        "The weather is lovely today.", "A man is playing a guitar.", "The new phone has a great camera.",
        "Stock markets fell sharply on Monday.", "Ich habe Hunger.",
    ]
    static let passage = "The Eiffel Tower was finished in 1889 for the World's Fair in Paris. It is 330 metres "
        + "tall and was the tallest structure in the world until 1930."

    func load() async {
        do {
            guard let bundle = Bundle.main.url(forResource: "bundle", withExtension: nil) else {
                status = "No bundle: copy one into Sources/bundle (docs/apps.md)"
                return
            }
            let manifest = try Manifest.read(bundle: bundle)
            guard let entry = manifest.find(format: "coreml") else {
                status = "The bundle has no Core ML artifact"
                return
            }
            let read = { (path: String) in try Data(contentsOf: bundle.appendingPathComponent(path)) }
            if entry.task == "text-generation" {
                try loadDecoder(entry, bundle: bundle, read: read)
                return
            }
            let tokenizer = try Tokenizers.text(
                tokenizerJSON: read(entry.tokenizerFile("tokenizer.json") ?? "missing"),
                tokenizerConfigJSON: try entry.tokenizerFile("tokenizer_config.json").map(read))
            let builder = InputBuilder(entry: entry, tokenizer: tokenizer)
            let runner = try CoreMLRunner(bundle: bundle, entry: entry)
            let golden = try Golden(data: read(entry.golden))
            let result = try golden.selfTest(builder: builder) { try runner.run($0) }
            (self.entry, self.builder, self.runner) = (entry, builder, runner)
            status = "\(entry.model) · \(entry.target)\nGolden self-test: \(result)"
        } catch {
            status = "Cannot load the bundle: \(error)"
        }
    }

    /// A decoder bundle: its BPE tokenizer, the cached generator over the Core ML program, the golden prompts.
    private func loadDecoder(_ entry: ArtifactEntry, bundle: URL, read: (String) throws -> Data) throws {
        let tokenizer = try Tokenizers.generation(
            tokenizerJSON: read(entry.tokenizerFile("tokenizer.json") ?? "missing"),
            tokenizerConfigJSON: try entry.tokenizerFile("tokenizer_config.json").map(read))
        let geometry = try CacheGeometry(entry: entry)
        let runner = try CoreMLRunner(bundle: bundle, entry: entry)
        guard case .fixed(let vocab)? = entry.outputs.first(where: { $0.name == "logits" })?.shape.last else {
            throw CoreError.malformed("logits without a fixed vocabulary size")
        }
        let shape = [geometry.layers, 1, geometry.kvHeads, geometry.context, geometry.headDim]
        let generator = Generator(geometry: geometry, vocab: vocab, call: runner.decoderCall(cacheShape: shape))
        let result = try GenerationGolden(data: read(entry.golden)).selfTest(generator, tokenizer: tokenizer)
        (self.entry, self.runner, self.generator, self.bpe, context) = (entry, runner, generator, tokenizer, geometry.context)
        status = "\(entry.model) · \(entry.target) (decoder)\nGolden self-test: \(result)"
    }

    /// 32 greedy tokens after the prompt, with time to first token and decode tokens/s.
    private func generate(_ text: String) throws -> String {
        guard let generator, let bpe else { throw CoreError.malformed("no decoder loaded") }
        let prompt = bpe.encode(text, maxLength: context - Self.newTokens)
        let start = Date()
        var first = start
        let tokens = try generator.generate(prompt, newTokens: Self.newTokens) { _ in first = Date() }
        let decode = Date().timeIntervalSince(first)
        return bpe.decode(tokens) + String(format: "\n\nTime to first token: %.1f ms · decode %.1f tokens/s",
                                           first.timeIntervalSince(start) * 1000, Double(Self.newTokens - 1) / decode)
    }

    private func timed(_ text: String) throws -> ([String: [Float]], [Int32], Double) {
        guard let builder else { throw CoreError.malformed("no model loaded") }
        return try timed(inputs: builder.build([text]))
    }

    private func timed(inputs: [String: IntTensor]) throws -> ([String: [Float]], [Int32], Double) {
        guard let runner else { throw CoreError.malformed("no model loaded") }
        let start = Date()
        let outputs = try runner.run(inputs)
        return (outputs, inputs["attention_mask"]?.data ?? [], Date().timeIntervalSince(start) * 1000)
    }

    func run(_ text: String) {
        guard let entry else { return }
        do {
            switch entry.task {
            case "text-generation":
                answer = try generate(text)
            case "feature-extraction":
                func embed(_ t: String) throws -> ([Double], Double) {
                    let (out, mask, ms) = try timed(t)
                    let hidden = out["last_hidden_state"] ?? []
                    return (Decode.meanPooled(hidden: hidden, mask: mask, hiddenSize: hidden.count / max(mask.count, 1)), ms)
                }
                let (query, ms) = try embed(text)
                let ranked = try Self.sentences.map { ($0, Decode.cosine(query, try embed($0).0)) }.sorted { $0.1 > $1.1 }
                answer = ranked.map { String(format: "%.3f  %@", $0.1, $0.0) }.joined(separator: "\n")
                    + String(format: "\n\nLatency: %.1f ms", ms)
            case "text-classification":
                let (out, _, ms) = try timed(text)
                let best = Decode.classify(logits: out["logits"] ?? [], labels: entry.labels)[0]
                answer = String(format: "%@ (%.3f)\n\nLatency: %.1f ms", best.label, best.score, ms)
            case "question-answering":
                // the typed text is the question, asked of a built-in passage: a pair, as validation fed the model
                guard let builder else { throw CoreError.malformed("no model loaded") }
                let (out, _, ms) = try timed(inputs: builder.buildPairs([(text, Self.passage)]))
                let start = Decode.argmax(out["start_logits"] ?? []), end = Decode.argmax(out["end_logits"] ?? [])
                answer = "Passage: \(Self.passage)\n\nAnswer: input tokens \(start) to \(end)"
                    + String(format: "\n\nLatency: %.1f ms", ms)
            default:
                let (out, _, ms) = try timed(text)
                answer = out.map { "\($0.key): \($0.value.count) values" }.joined(separator: "\n")
                    + String(format: "\n\nLatency: %.1f ms", ms)
            }
        } catch {
            answer = "Error: \(error)"
        }
    }
}

struct ContentView: View {
    @StateObject private var model = DemoModel()
    @State private var text = ""

    var body: some View {
        NavigationStack {
            Form {
                Section("Bundle") { Text(model.status).font(.footnote) }
                Section("Input") {
                    TextField("Type a sentence", text: $text, axis: .vertical)
                    Button("Run") { model.run(text) }
                }
                Section("Answer") { Text(model.answer).font(.body.monospaced()) }
            }
            .navigationTitle("slimport")
        }
        .task { await model.load() }
    }
}
