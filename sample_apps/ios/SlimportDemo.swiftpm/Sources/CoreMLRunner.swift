import CoreML
import Foundation
import SlimportCore

/// Runs a bundle's `.mlpackage` with Core ML: compiled on first use, with the compute units the target
/// chose (the package's `slimport.compute_units` metadata).
final class CoreMLRunner {
    private let model: MLModel
    private let entry: ArtifactEntry

    init(bundle: URL, entry: ArtifactEntry) throws {
        self.entry = entry
        let package = bundle.appendingPathComponent("\(entry.folder)/\(entry.modelFile)")
        let compiled = try MLModel.compileModel(at: package)
        let configuration = MLModelConfiguration()
        let probe = try MLModel(contentsOf: compiled)
        let metadata = probe.modelDescription.metadata[.creatorDefinedKey] as? [String: String] ?? [:]
        configuration.computeUnits = Self.units(metadata["slimport.compute_units"] ?? "ALL")
        model = try MLModel(contentsOf: compiled, configuration: configuration)
    }

    static func units(_ name: String) -> MLComputeUnits {
        switch name {
        case "CPU_ONLY": return .cpuOnly
        case "CPU_AND_GPU": return .cpuAndGPU
        case "CPU_AND_NE": return .cpuAndNeuralEngine
        default: return .all
        }
    }

    /// int32 inputs by name in, fp32 outputs by name (row-major) out.
    func run(_ inputs: [String: IntTensor]) throws -> [String: [Float]] {
        var features: [String: MLFeatureValue] = [:]
        for (name, tensor) in inputs {
            let array = try MLMultiArray(shape: tensor.shape.map { NSNumber(value: $0) }, dataType: .int32)
            for (i, value) in tensor.data.enumerated() { array[i] = NSNumber(value: value) }
            features[name] = MLFeatureValue(multiArray: array)
        }
        let result = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: features))
        var outputs: [String: [Float]] = [:]
        for spec in entry.outputs {
            guard let array = result.featureValue(for: spec.name)?.multiArrayValue else { continue }
            outputs[spec.name] = (0..<array.count).map { array[$0].floatValue }
        }
        return outputs
    }

    /// A decoder program as the core's `DecoderCall`: int32 ids/positions `[1, T]` and the fp32 caches in,
    /// logits and the new cache rows out (the cache itself stays in the core's `Generator`).
    func decoderCall(cacheShape: [Int]) -> DecoderCall {
        return { [model] ids, positions, kCache, vCache in
            func ints(_ values: [Int32]) throws -> MLMultiArray {
                let array = try MLMultiArray(shape: [1, NSNumber(value: values.count)], dataType: .int32)
                values.withUnsafeBytes { array.dataPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                return array
            }
            func floats(_ values: [Float]) throws -> MLMultiArray {
                let array = try MLMultiArray(shape: cacheShape.map { NSNumber(value: $0) }, dataType: .float32)
                values.withUnsafeBytes { array.dataPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                return array
            }
            let features: [String: MLFeatureValue] = [
                "input_ids": MLFeatureValue(multiArray: try ints(ids)),
                "input_pos": MLFeatureValue(multiArray: try ints(positions)),
                "k_cache": MLFeatureValue(multiArray: try floats(kCache)),
                "v_cache": MLFeatureValue(multiArray: try floats(vCache)),
            ]
            let result = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: features))
            func read(_ name: String) throws -> [Float] {
                guard let array = result.featureValue(for: name)?.multiArrayValue else {
                    throw CoreError.malformed("the program returned no \(name)")
                }
                return (0..<array.count).map { array[$0].floatValue }  // fp16 or fp32 storage alike
            }
            return StepOutput(logits: try read("logits"), kNew: try read("k_new"), vNew: try read("v_new"))
        }
    }
}
