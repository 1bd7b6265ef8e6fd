import FerryPluginKit

/// Splits CSV lines (RFC 4180 quoting, one record a line) into fields named
/// by the header row, and writes each record as a BSON document.
final class CSVParser {
    let delimiter: UInt8
    let inferTypes: Bool
    var names: [String] = []
    var fields: [ArraySlice<UInt8>] = []
    var unquoted: [UInt8] = []

    init(delimiter: UInt8, inferTypes: Bool) throws {
        self.delimiter = delimiter
        self.inferTypes = inferTypes
    }

    func readHeader(_ line: ArraySlice<UInt8>, location: String) throws {
        names = try split(line, location: location).map { String(decoding: $0, as: UTF8.self) }
        if let duplicate = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw PluginError.data("\(location): duplicate CSV column '\(duplicate)'")
        }
    }

    func appendRecord(_ line: ArraySlice<UInt8>, into batch: BatchBuilder, location: String) throws {
        let values = try split(line, location: location)
        guard values.count == names.count else {
            throw PluginError.data("\(location): \(values.count) fields, the header has \(names.count)")
        }
        batch.appendDocument { doc in
            for (name, value) in zip(names, values) { append(value, as: name, to: &doc) }
        }
    }

    private func append(_ value: [UInt8], as name: String, to doc: inout DocumentWriter) {
        guard inferTypes else {
            value.withUnsafeBytes { doc.appendString(name, utf8: $0) }
            return
        }
        let text = String(decoding: value, as: UTF8.self)
        if value.isEmpty {
            doc.appendNull(name)
        } else if let int = Int64(text) {
            doc.append(name, int)
        } else if value.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }),
            let double = Double(text), double.isFinite
        {
            doc.append(name, double)
        } else if text == "true" || text == "false" {
            doc.append(name, text == "true")
        } else {
            doc.append(name, text)
        }
    }

    private func split(_ line: ArraySlice<UInt8>, location: String) throws -> [[UInt8]] {
        var line = line
        if line.last == 0x0D { line = line.dropLast() }
        var result: [[UInt8]] = []
        var current: [UInt8] = []
        var index = line.startIndex
        var quoted = false
        var wasQuoted = false
        while index < line.endIndex {
            let byte = line[index]
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if index + 1 < line.endIndex && line[index + 1] == UInt8(ascii: "\"") {
                        current.append(byte)
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(byte)
                }
            } else if byte == UInt8(ascii: "\"") && current.isEmpty && !wasQuoted {
                quoted = true
                wasQuoted = true
            } else if byte == delimiter {
                result.append(current)
                current = []
                wasQuoted = false
            } else {
                current.append(byte)
            }
            index += 1
        }
        if quoted {
            throw PluginError.data("\(location): unterminated quoted field (fields spanning lines are not supported)")
        }
        result.append(current)
        return result
    }
}
