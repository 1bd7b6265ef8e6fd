import FerryPluginKit
import Testing

@Suite("BSONValue.numberAsDouble: numbers compared across integer widths")
struct NumberAsDoubleTests {
    @Test("int32, int64 and double give their value; everything else, a decimal and a numeric string included, gives nil")
    func conversion() {
        #expect(BSONValue.int32(-7).numberAsDouble == -7)
        #expect(BSONValue.int64(1 << 40).numberAsDouble == Double(1 << 40))
        #expect(BSONValue.double(2.5).numberAsDouble == 2.5)
        #expect(BSONValue.int32(3).numberAsDouble == BSONValue.int64(3).numberAsDouble)
        #expect(BSONValue.string("3").numberAsDouble == nil)
        #expect(BSONValue.decimal128(Array(repeating: 0, count: 16)).numberAsDouble == nil)
        #expect(BSONValue.bool(true).numberAsDouble == nil)
        #expect(BSONValue.datetime(0).numberAsDouble == nil)
        #expect(BSONValue.null.numberAsDouble == nil)
    }
}
