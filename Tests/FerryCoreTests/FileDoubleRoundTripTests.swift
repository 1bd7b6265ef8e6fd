import FerryCore
import FerryPluginKit
import FerryPluginTesting
import Foundation
import Testing

/// Doubles through the file sink and back through the file source: written
/// as the shortest text that reads back to the same bits, as valid JSON.
@Suite("File sink doubles", .serialized)
struct FileDoubleRoundTripTests {
    let work: String
    let harness: PluginHarness

    init() throws {
        work = try TestSupport.temporaryDirectory("ferry-file-doubles")
        harness = try PluginHarness(path: TestSupport.product("libFerryFile.so"))
    }

    /// Edge values first, then random bit patterns: uniform over all 2^64,
    /// subnormals, decimal-looking values and integers held as doubles.
    static func doubles(count: Int) -> [Double] {
        var values: [Double] = [
            0, -0.0, 0.01, 0.1, 0.3, 1, -1, 1.5, 100, 1e16, 1e-7, 123456789012345680, 9007199254740993,
            .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, .leastNormalMagnitude.nextDown,
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .pi, .ulpOfOne,
            .infinity, -.infinity, .nan, -.nan, .signalingNaN, Double(bitPattern: 0x7FF0_0000_0000_0001), Double(bitPattern: 0xFFF8_dead_beef_0001),
        ]
        var generator = SystemRandomNumberGenerator()
        while values.count < count {
            let bits = UInt64.random(in: .min ... .max, using: &generator)
            switch values.count % 4 {
            case 0: values.append(Double(bitPattern: bits))
            case 1: values.append(Double(bitPattern: bits & 0x800F_FFFF_FFFF_FFFF))  // subnormal (or ±0)
            case 2: values.append(Double(Int64(truncatingIfNeeded: bits) % 1_000_000_000) / Double([1, 10, 100, 1000, 1e6][Int(bits >> 60) % 5]))
            default: values.append(Double(Int64(truncatingIfNeeded: bits) >> Int(bits % 40)))
            }
        }
        return values
    }

    @Test("100,000 doubles (random bit patterns, subnormals, -0, NaN, infinities) come back bit-identical, as valid JSON")
    func doublesRoundTrip() throws {
        let values = Self.doubles(count: 100_000)
        let path = "\(work)/doubles.jsonl"
        let sink = try harness.open(.sink, config: #"{"path": "\#(path)"}"#, mode: .full)
        for start in stride(from: 0, to: values.count, by: 1000) {
            let records = values[start..<min(start + 1000, values.count)].enumerated().map { offset, value in
                Record(bytes: BSONDocument([("i", .int32(Int32(start + offset))), ("d", .double(value)), ("in", .array([.double(value)]))]).encoded())
            }
            let written = try sink.write(records)
            #expect(written.rejects.isEmpty)
        }
        try sink.commit()
        sink.close()

        // Plain JSON a JSON parser accepts: NaN and the infinities as extended JSON objects.
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == values.count)
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
        #expect(lines[2] == #"{ "i" : 2, "d" : 0.01, "in" : [ 0.01 ] }"#)
        #expect(lines[1] == #"{ "i" : 1, "d" : -0.0, "in" : [ -0.0 ] }"#)
        #expect(lines[9] == #"{ "i" : 9, "d" : 1e+16, "in" : [ 1e+16 ] }"#)
        #expect(lines[21] == #"{ "i" : 21, "d" : { "$numberDouble" : "Infinity" }, "in" : [ { "$numberDouble" : "Infinity" } ] }"#)
        #expect(lines[23] == #"{ "i" : 23, "d" : { "$numberDouble" : "NaN" }, "in" : [ { "$numberDouble" : "NaN" } ] }"#)

        let source = try harness.open(.source, config: #"{"path": "\#(path)"}"#, mode: .full, batchSize: 5000)
        defer { source.close() }
        let records = try source.readAll().batches.flatMap(\.records)
        #expect(records.count == values.count)
        var mismatches: [String] = []
        for (index, record) in records.enumerated() {
            let document = record.bytes.withUnsafeBytes { DocumentView($0).decode() }
            let expected = values[index]
            for value in [document["d"], document["in"].flatMap { if case .array(let items) = $0 { items.first } else { nil } }] {
                guard case .double(let got)? = value else {
                    mismatches.append("#\(index) \(expected.bitPattern): read back \(String(describing: value))")
                    continue
                }
                let same = expected.isNaN ? got.isNaN : got.bitPattern == expected.bitPattern
                if !same { mismatches.append("#\(index) \(expected) (bits \(expected.bitPattern)) read back as \(got) (bits \(got.bitPattern)): \(lines[index])") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
    }

    @Test("integers stay integers, and the file's other types read back as they were")
    func otherTypes() throws {
        let path = "\(work)/types.jsonl"
        let original = try Record(json: #"{"i32": 7, "i64": {"$numberLong": "9007199254740993"}, "s": "tab\t\"q\" \\ \u0001 é", "at": {"$date": "2026-11-25T10:00:00.123Z"}, "dec": {"$numberDecimal": "19.99"}, "oid": {"$oid": "650000000000000000000001"}, "bin": {"$binary": {"base64": "AQID", "subType": "04"}}, "n": null, "b": false, "doc": {}, "arr": []}"#)
        let sink = try harness.open(.sink, config: #"{"path": "\#(path)"}"#, mode: .full)
        _ = try sink.write([original])
        try sink.commit()
        sink.close()
        let line = try String(contentsOfFile: path, encoding: .utf8)
        #expect(line.hasPrefix(#"{ "i32" : 7, "i64" : 9007199254740993, "s" : "tab\t\"q\" \\ \u0001 é", "at" : { "$date" : "2026-11-25T10:00:00.123Z" }"#), "\(line)")
        #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil)
        let source = try harness.open(.source, config: #"{"path": "\#(path)"}"#, mode: .full)
        defer { source.close() }
        #expect(try source.readAll().batches.flatMap(\.records) == [original])
    }
}
