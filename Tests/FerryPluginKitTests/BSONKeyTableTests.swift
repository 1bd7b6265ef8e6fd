import FerryPluginKit
import Testing

/// A key from a `BSONKeyTable` writes exactly the bytes its `String` would.
@Suite("BSON keys encoded once")
struct BSONKeyTableTests {
    /// Writes every kind of value twice, once per key form; the two documents must be byte-equal.
    func both(_ names: [String]) -> (strings: [UInt8], keys: [UInt8]) {
        let table = BSONKeyTable(names)
        let strings = BatchBuilder(), keys = BatchBuilder()
        let decimal: (UInt64, UInt64) = (1234, 0x3040_0000_0000_0000)
        let uuid: [UInt8] = Array(0..<16)
        strings.appendDocument { doc in
            doc.append(names[0], Int32(-7))
            doc.append(names[1], Int64(1) << 40)
            doc.append(names[2], 0.01)
            doc.append(names[3], false)
            "text ✓".utf8CString.dropLast().withUnsafeBytes { doc.appendString(names[4], utf8: $0) }
            doc.appendNull(names[5])
            doc.appendDatetime(names[6], milliseconds: -1)
            doc.append(names[7], BSONValue.decimal128(withUnsafeBytes(of: decimal.0.littleEndian, Array.init) + withUnsafeBytes(of: decimal.1.littleEndian, Array.init)))
            doc.append(names[8], BSONValue.binary(subtype: 4, data: uuid))
            doc.append(names[9], BSONValue.regex(pattern: "a.*", options: "i"))
        }
        keys.appendDocument { doc in
            doc.append(table[0], Int32(-7))
            doc.append(table[1], Int64(1) << 40)
            doc.append(table[2], 0.01)
            doc.append(table[3], false)
            "text ✓".utf8CString.dropLast().withUnsafeBytes { doc.appendString(table[4], utf8: $0) }
            doc.appendNull(table[5])
            doc.appendDatetime(table[6], milliseconds: -1)
            doc.appendDecimal128(table[7], low: decimal.0, high: decimal.1)
            uuid.withUnsafeBytes { doc.appendBinary(table[8], subtype: 4, $0) }
            doc.append(table[9], BSONValue.regex(pattern: "a.*", options: "i"))
        }
        return (strings.view.bytes.map { $0 }, keys.view.bytes.map { $0 })
    }

    @Test("every overload writes the bytes of its String-keyed twin, for ASCII, non-ASCII and empty names")
    func sameBytes() throws {
        let ascii = ["id", "sku", "price", "ok", "name", "gone", "at", "amount", "uuid", "re"]
        let other = ["ключ", "価格", "", "a b", "x".padding(toLength: 300, withPad: "y", startingAt: 0), "é", "$d", "k.e.y", "0", "🙂"]
        for names in [ascii, other] {
            let (strings, keys) = both(names)
            #expect(strings == keys, "\(names)")
            #expect(!strings.isEmpty)
        }
    }

    @Test("matches compares a field's key bytes with the name, length included")
    func matches() throws {
        let table = BSONKeyTable(["price", "", "pri"])
        #expect(table.count == 3)
        func test(_ key: String, _ index: Int) -> Bool {
            var key = key
            return key.withUTF8 { table[index].matches(UnsafeRawBufferPointer($0)) }
        }
        #expect(test("price", 0))
        #expect(!test("pric", 0))
        #expect(!test("prices", 0))
        #expect(test("", 1))
        #expect(!test("p", 1))
        #expect(test("pri", 2))
        #expect(!test("price", 2))
    }
}
