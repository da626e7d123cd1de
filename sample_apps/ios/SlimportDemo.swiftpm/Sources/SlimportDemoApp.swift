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

    static let sentences = [
        "The weather is lovely today.", "A man is playing a guitar.", "The new phone has a great camera.",
        "Stock markets fell sharply on Monday.", "Ich habe Hunger.",
    ]

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
            let tokenizer = try WordPieceTokenizer(
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

    private func timed(_ text: String) throws -> ([String: [Float]], [Int32], Double) {
        guard let builder, let runner else { throw CoreError.malformed("no model loaded") }
        let inputs = try builder.build([text])
        let start = Date()
        let outputs = try runner.run(inputs)
        return (outputs, inputs["attention_mask"]?.data ?? [], Date().timeIntervalSince(start) * 1000)
    }

    func run(_ text: String) {
        guard let entry else { return }
        do {
            switch entry.task {
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
