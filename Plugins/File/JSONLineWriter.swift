import FerryPluginKit

/// Writes one BSON document as one line of relaxed extended JSON, laid out as
/// libbson lays it out (`{ "a" : 1, "b" : [ 2 ] }`), but with each finite
/// double as the shortest text that reads back to the same bits (`0.01`, not
/// libbson's 20 digits). NaN and the infinities are not JSON numbers: they
/// are written as `{ "$numberDouble" : "NaN" }`, `"Infinity"`, `"-Infinity"`.
/// Types JSON has no form for (dates, decimals, ObjectIds, binary…) are
/// written as libbson writes them in relaxed extended JSON.
struct JSONLineWriter {
    /// The last line rendered.
    private let output = ByteBuffer(capacity: 4096)
    /// Holds a one-field document while libbson renders a value of another type.
    private let wrapper = ByteBuffer(capacity: 256)

    /// The document's line, without a newline, valid until the next call; nil
    /// when the document is not valid BSON (bad lengths, bad UTF-8).
    func render(_ document: DocumentView) -> UnsafeRawBufferPointer? {
        guard ExtendedJSON.firstInvalidOffset(document) == nil else { return nil }
        output.removeAll()
        guard appendDocument(document, array: false) else { return nil }
        return output.bytes
    }

    private func appendDocument(_ document: DocumentView, array: Bool) -> Bool {
        var first = true
        append(array ? "[ " : "{ ")
        for element in document {
            if !first { append(", ") }
            first = false
            if !array {
                appendQuoted(element.keyBytes)
                append(" : ")
            }
            guard appendValue(element) else { return false }
        }
        append(first ? (array ? "]" : "}") : (array ? " ]" : " }"))
        return true
    }

    private func appendValue(_ element: BSONElement) -> Bool {
        switch element.type {
        case .double:
            appendDouble(element.doubleValue!)
        case .string:
            appendQuoted(element.stringBytes!)
        case .document, .array:
            return appendDocument(element.documentValue!, array: element.type == .array)
        case .int32, .int64:
            append(String(element.int64Value!))
        case .bool:
            append(element.boolValue! ? "true" : "false")
        case .null:
            append("null")
        default:
            return appendThroughLibBSON(element)
        }
        return true
    }

    func appendDouble(_ value: Double) {
        if value.isNaN {
            append(#"{ "$numberDouble" : "NaN" }"#)
        } else if value.isInfinite {
            append(value < 0 ? #"{ "$numberDouble" : "-Infinity" }"# : #"{ "$numberDouble" : "Infinity" }"#)
        } else {
            // Swift's description is the shortest round-trip text, and always
            // has a '.' or an exponent, so it reads back as a double, not an integer.
            append(value.description)
        }
    }

    /// Renders `{ "v" : value }` with libbson and keeps the value's text.
    private func appendThroughLibBSON(_ element: BSONElement) -> Bool {
        wrapper.removeAll()
        var writer = DocumentWriter(buffer: wrapper)
        writer.append("v", element: element)
        writer.finish()
        guard let text = ExtendedJSON.render(DocumentView(wrapper.bytes)) else { return false }
        let prefix = #"{ "v" : "#, suffix = " }"
        guard text.hasPrefix(prefix), text.hasSuffix(suffix), text.utf8.count > prefix.utf8.count + suffix.utf8.count else { return false }
        append(String(text.dropFirst(prefix.count).dropLast(suffix.count)))
        return true
    }

    /// A JSON string: quotes, backslashes and control characters escaped,
    /// everything else (valid UTF-8, checked before) as it is.
    private func appendQuoted(_ bytes: UnsafeRawBufferPointer) {
        output.append(byte: 0x22)
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
            if runStart < index { output.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index])) }
            switch byte {
            case 0x22: append(#"\""#)
            case 0x5C: append(#"\\"#)
            case 0x0A: append(#"\n"#)
            case 0x0D: append(#"\r"#)
            case 0x09: append(#"\t"#)
            case 0x08: append(#"\b"#)
            case 0x0C: append(#"\f"#)
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                for b in [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 15)]] {
                    output.append(byte: b)
                }
            }
            runStart = index + 1
        }
        if runStart < bytes.count { output.append(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
        output.append(byte: 0x22)
    }

    private func append(_ text: String) {
        var text = text
        text.withUTF8 { output.append(UnsafeRawBufferPointer($0)) }
    }
}
