import Foundation

/// One golden vector of `golden.json`: the text (and, for question answering, the context it is paired
/// with), the exact inputs, PyTorch's outputs and their shapes.
public struct GoldenVector {
    public let text: String
    public let inputs: [String: IntTensor]
    public let outputs: [String: [Float]]
    public let shapes: [String: [Int]]
    public let textPair: String?

    /// The inputs `builder` makes of this vector's text (or text pair).
    public func build(_ builder: InputBuilder) throws -> [String: IntTensor] {
        if let textPair { return try builder.buildPairs([(text, textPair)]) }
        return try builder.build([text])
    }
}

/// The outcome of a golden self-test: PASS/FAIL, the largest error per output, one line per problem.
public struct SelfTestResult: CustomStringConvertible {
    public let passed: Bool
    public let maxError: [String: Double]
    public let problems: [String]

    public var description: String {
        let errors = maxError.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.3g", $0.value))" }
        return "\(passed ? "PASS" : "FAIL") (max error \(errors.joined(separator: ", ")))"
            + (problems.first.map { ": \($0)" } ?? "")
    }
}

/// The golden vectors of one artifact and the per-output absolute tolerances released with them.
public struct Golden {
    public let atol: [String: Double]
    public let vectors: [GoldenVector]

    /// Parses `golden.json` (Python writes NaN/Infinity for non-finite outputs; JSON5 reading accepts them).
    public init(data: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: data, options: [.json5Allowed]) as? [String: Any],
              let atol = root["atol"] as? [String: Double], let items = root["vectors"] as? [[String: Any]] else {
            throw CoreError.malformed("golden.json")
        }
        self.atol = atol
        vectors = try items.map { item in
            guard let text = item["text"] as? String, let inputs = item["inputs"] as? [String: Any],
                  let outputs = item["outputs"] as? [String: Any], let shapes = item["shapes"] as? [String: [Int]] else {
                throw CoreError.malformed("golden.json vector")
            }
            return GoldenVector(
                text: text,
                inputs: inputs.mapValues { Golden.intTensor($0) },
                outputs: outputs.mapValues { Golden.flatten($0).map(Float.init) },
                shapes: shapes,
                textPair: item["text_pair"] as? String)
        }
    }

    /// Runs every vector through `model` and compares with PyTorch's outputs within `atol`. With `builder`,
    /// also checks that the app builds the golden inputs from the golden text (or text pair) exactly.
    public func selfTest(builder: InputBuilder? = nil,
                         model: ([String: IntTensor]) throws -> [String: [Float]]) rethrows -> SelfTestResult {
        var problems: [String] = []
        var worst: [String: Double] = [:]
        for (index, vector) in vectors.enumerated() {
            if let builder {
                let built = try? vector.build(builder)
                for (name, expected) in vector.inputs where built?[name] != expected {
                    problems.append("vector \(index): built \(name) differs from the golden input")
                }
            }
            let produced = try model(vector.inputs)
            for (name, expected) in vector.outputs {
                guard let got = produced[name], got.count == expected.count else {
                    problems.append("vector \(index): output \(name) missing or of the wrong size")
                    worst[name] = .infinity
                    continue
                }
                let error = maxAbsError(got, expected)
                worst[name] = max(worst[name] ?? 0, error)
                let limit = atol[name] ?? 0
                if error > limit {
                    problems.append("vector \(index): \(name) differs by \(String(format: "%.4g", error)) "
                                    + "(tolerance \(String(format: "%.4g", limit)))")
                }
            }
        }
        return SelfTestResult(passed: problems.isEmpty, maxError: worst, problems: problems)
    }

    static func intTensor(_ nested: Any) -> IntTensor {
        var shape: [Int] = []
        var level: Any? = nested
        while let list = level as? [Any] { shape.append(list.count); level = list.first }
        return IntTensor(shape: shape, data: flatten(nested).map { Int32($0) })
    }

    static func flatten(_ nested: Any) -> [Double] {
        if let list = nested as? [Any] { return list.flatMap { flatten($0) } }
        if let number = nested as? NSNumber { return [number.doubleValue] }
        return [.nan]
    }
}

/// The largest |got - expected| over two equal-length arrays; infinite when any is NaN or the sizes differ.
public func maxAbsError(_ got: [Float], _ expected: [Float]) -> Double {
    guard got.count == expected.count else { return .infinity }
    var error = 0.0
    for i in expected.indices {
        let e = abs(Double(got[i]) - Double(expected[i]))
        error = e.isNaN ? .infinity : max(error, e)
    }
    return error
}
