import Foundation
import XCTest

@testable import SlimportCore

/// The tokenizer layouts the core reads (byte-level BPE, SentencePiece-style BPE, SentencePiece
/// Unigram) against Python's ids and, where given, decoded text: the same check as the Kotlin core's
/// TokenizerTest. SLIMPORT_TOKENIZERS names the file tests/test_apps.py writes
/// (`{"sets": [{"name", "tokenizer", "config", "max_length", "cases": [...]}]}`, cases as `reproduces` reads
/// them).
final class TokenizerTests: XCTestCase {
    func testEveryLayoutMatchesPythonIdsAndDecoding() throws {
        guard let path = ProcessInfo.processInfo.environment["SLIMPORT_TOKENIZERS"] else {
            throw XCTSkip("set SLIMPORT_TOKENIZERS to the tokenizer parity file tests/test_apps.py writes")
        }
        let parity = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        for set in parity["sets"] as! [[String: Any]] {
            let json = try Data(contentsOf: URL(fileURLWithPath: set["tokenizer"] as! String))
            let config = try Data(contentsOf: URL(fileURLWithPath: set["config"] as! String))
            let tok = try Tokenizers.text(tokenizerJSON: json, tokenizerConfigJSON: config)
            let maxLength = set["max_length"] as! Int
            let cases = set["cases"] as! [[String: Any]]
            let same = cases.filter { reproduces(tok, $0, maxLength: maxLength) }.count
            print("parity \(set["name"]!): \(same)/\(cases.count) texts identical")
            XCTAssertEqual(same, cases.count)
        }
    }
}

/// True when `tok` gives a parity case's ids: a text (`{"text", "ids", "decoded"?}`, encoded to
/// `maxLength`, decoded text compared where given) or a text pair (`{"text", "pair", "max_length", "ids",
/// "type_ids"}`). Mirrors `compare` of the Kotlin core's TokenizerTest.
func reproduces(_ tok: TextTokenizer, _ item: [String: Any], maxLength: Int) -> Bool {
    let text = item["text"] as! String
    if let pair = item["pair"] as? String {
        let encoding = tok.encodePair(text, pair, maxLength: item["max_length"] as! Int)
        return encoding.ids == item["ids"] as! [Int] && encoding.typeIds == item["type_ids"] as! [Int]
    }
    let ids = tok.encode(text, maxLength: maxLength)
    let decoded = (item["decoded"] as? String).map { _ in (tok as? GenerationTokenizer)?.decode(ids) ?? "?" }
    return ids == item["ids"] as! [Int] && decoded == item["decoded"] as? String
}
