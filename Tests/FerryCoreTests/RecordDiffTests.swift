import FerryPluginKit
import Testing

@testable import FerryCore

@Suite("ferry test's record comparison")
struct RecordDiffTests {
    @Test("a decimal is named 'decimal', as the map plugin's reasons and MongoDB's $type name it")
    func decimalName() throws {
        let decimal = Array(try ExtendedJSON.parse(#"{"p": {"$numberDecimal": "1.5"}}"#)[7..<23])
        let differences = RecordDiff.compare(expected: ["p": .string("1.5")], actual: ["p": .decimal128(decimal)], path: "tests[0]")
        #expect(differences == [#"tests[0]: field 'p': expected "1.5" (string), got { "$numberDecimal" : "1.5" } (decimal)"#])
    }

    @Test("numbers compare by value across int32, int64 and double; a numeric string is not a number")
    func numbersAcrossWidths() {
        #expect(RecordDiff.compare(expected: ["n": .int32(3)], actual: ["n": .int64(3)], path: "t").isEmpty)
        #expect(RecordDiff.compare(expected: ["n": .int32(3)], actual: ["n": .double(3)], path: "t").isEmpty)
        #expect(RecordDiff.compare(expected: ["n": .int32(3)], actual: ["n": .double(3.5)], path: "t").count == 1)
        #expect(RecordDiff.compare(expected: ["n": .int32(3)], actual: ["n": .string("3")], path: "t").count == 1)
    }
}
