import CLibBSON
import FerryPluginKit
import Foundation

/// The batch check the host runs on what a plugin returns
/// (`BatchView.validateFraming`) and the element walk every stage after it
/// uses (`DocumentView`), with libbson as the oracle.
///
/// Input: one byte, the batch's declared document count, then the batch bytes.
/// - framing: Ferry accepts the batch exactly when libbson's
///   `bson_new_from_data` (the checks of `bson_init_static`) accepts every
///   document it holds and their number is the declared count;
/// - walking and decoding any framed document stays in bounds (ASan watches);
/// - for a document `ExtendedJSON.firstInvalidOffset` accepts (below), Ferry
///   sees the same elements (keys, types, nesting, string bytes) as libbson's
///   iterator, Ferry's writer re-encodes what Ferry decoded to the same bytes
///   (arrays numbered 0, 1, … as the writer numbers them), and libbson renders
///   it as JSON (what the file sink writes).
/// `ExtendedJSON.firstInvalidOffset` is the validity check: libbson's
/// `bson_validate` plus Ferry's walk for what libbson 1.23 lets through.
func fuzzBSONBatch(_ data: [UInt8]) throws {
    guard let declared = data.first else { return }
    let body = Array(data.dropFirst())
    try body.withUnsafeBytes { bytes in
        let batch = BatchView(bytes: bytes, count: Int(declared))
        var ferryAccepts = true
        do { try batch.validateFraming() } catch { ferryAccepts = false }
        let libbsonCount = libbsonDocumentCount(bytes)
        let libbsonAccepts = libbsonCount == Int(declared)
        try fuzzRequire(
            ferryAccepts == libbsonAccepts, "bson-batch",
            "validateFraming \(ferryAccepts ? "accepts" : "refuses") a batch declaring \(declared) documents "
                + "that libbson \(libbsonAccepts ? "accepts" : "refuses") (libbson reads \(libbsonCount.map(String.init) ?? "no valid framing"))")
        var walked = 0
        for document in batch {
            walked += 1
            try checkDocument(document)
        }
        if ferryAccepts {
            try fuzzRequire(walked == Int(declared), "bson-batch", "an accepted batch of \(declared) documents iterates \(walked)")
        }
    }
}

/// How many documents libbson reads from a batch, back to back, or nil if
/// one of them (or trailing bytes) is refused.
private func libbsonDocumentCount(_ bytes: UnsafeRawBufferPointer) -> Int? {
    var offset = 0
    var documents = 0
    while offset < bytes.count {
        guard bytes.count - offset >= 4 else { return nil }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        guard length <= bytes.count - offset, let base = bytes.baseAddress else { return nil }
        guard let document = bson_new_from_data(base.advanced(by: offset).assumingMemoryBound(to: UInt8.self), length) else {
            return nil
        }
        bson_destroy(document)
        offset += length
        documents += 1
    }
    return documents
}

private func checkDocument(_ document: DocumentView) throws {
    // Whatever is framed must be walkable and decodable without reading out of bounds.
    let decoded = document.decode()
    for element in document {
        _ = element.int64Value
        _ = element.doubleValue
        _ = element.stringValue
        _ = element.boolValue
    }
    _ = document.element(atPath: "a.0.b")
    guard ExtendedJSON.firstInvalidOffset(document) == nil, let base = document.bytes.baseAddress else { return }

    guard let parsed = bson_new_from_data(base.assumingMemoryBound(to: UInt8.self), document.byteCount) else {
        throw FuzzInvariantFailure(target: "bson-batch", message: "bson_validate accepts a document bson_new_from_data refuses")
    }
    defer { bson_destroy(parsed) }
    let memory = newIteratorMemory()
    defer { memory.deallocate() }
    let iterator = OpaquePointer(memory)
    guard bson_iter_init(iterator, parsed) else {
        throw FuzzInvariantFailure(target: "bson-batch", message: "bson_iter_init refuses a valid document")
    }
    try compare(document, iterator, path: "")

    // Decoding keeps an array's values, not its keys: a re-encode numbers them
    // 0, 1, … So the bytes come back exactly when they were numbered so, and
    // after one re-encode in any case.
    let reencoded = decoded.encoded()
    let expected = numbersArraysInOrder(document) ? Array(document.bytes) : reencoded.withUnsafeBytes { DocumentView($0).decode().encoded() }
    try fuzzRequire(
        reencoded == expected, "bson-batch",
        "decode().encoded() changes a valid document: \(fuzzEscaped(document.bytes)) became \(fuzzEscaped(reencoded))")

    // What the file sink writes for a valid document is JSON.
    guard let relaxed = ExtendedJSON.render(document) else {
        throw FuzzInvariantFailure(target: "bson-batch", message: "a valid document cannot be rendered as JSON: \(fuzzEscaped(document.bytes))")
    }
    let syntax = try? JSONSerialization.jsonObject(with: Data(relaxed.utf8), options: [.fragmentsAllowed])
    try fuzzRequire(syntax != nil, "bson-batch", "a valid document renders as text that is not JSON: \(relaxed)")
}

/// Whether every array in the document has the keys 0, 1, 2, … in order.
private func numbersArraysInOrder(_ document: DocumentView, isArray: Bool = false) -> Bool {
    for (index, element) in document.enumerated() {
        if isArray && element.key != String(index) { return false }
        if let nested = element.documentValue, !numbersArraysInOrder(nested, isArray: element.typeByte == 0x04) { return false }
    }
    return true
}

/// Ferry's walk of `view` against libbson's iterator over the same bytes.
private func compare(_ view: DocumentView, _ libbson: OpaquePointer, path: String) throws {
    var ferry = view.makeIterator()
    var index = 0
    while bson_iter_next(libbson) {
        let key = String(cString: bson_iter_key(libbson))
        let here = path.isEmpty ? key : "\(path).\(key)"
        guard let element = ferry.next() else {
            throw FuzzInvariantFailure(target: "bson-batch", message: "Ferry stops before element \(index) ('\(here)') of a valid document")
        }
        try fuzzRequire(element.key == key, "bson-batch", "element \(index) of '\(path)': Ferry reads key '\(element.key)', libbson '\(key)'")
        let type = UInt8(truncatingIfNeeded: bson_iter_type(libbson).rawValue)
        try fuzzRequire(element.typeByte == type, "bson-batch", "'\(here)': Ferry reads type \(element.typeByte), libbson \(type)")
        if type == 0x03 || type == 0x04 {
            guard let nested = element.documentValue else {
                throw FuzzInvariantFailure(target: "bson-batch", message: "'\(here)': Ferry has no nested document")
            }
            let memory = newIteratorMemory()
            defer { memory.deallocate() }
            let child = OpaquePointer(memory)
            guard bson_iter_recurse(libbson, child) else {
                throw FuzzInvariantFailure(target: "bson-batch", message: "'\(here)': libbson cannot recurse into a valid document")
            }
            try compare(nested, child, path: here)
        } else if type == 0x02 {
            var length: UInt32 = 0
            let text = bson_iter_utf8(libbson, &length)
            let libbsonBytes = UnsafeRawBufferPointer(start: text, count: Int(length))
            try fuzzRequire(
                element.stringBytes.map { $0.elementsEqual(libbsonBytes) } ?? false, "bson-batch",
                "'\(here)': Ferry reads string \(fuzzEscaped(element.stringBytes ?? UnsafeRawBufferPointer(start: nil, count: 0))), libbson \(fuzzEscaped(libbsonBytes))")
        }
        index += 1
    }
    try fuzzRequire(ferry.next() == nil, "bson-batch", "Ferry reads more elements of '\(path)' than libbson (\(index))")
}

/// Room for one bson_iter_t. Swift sees the type as opaque (it is 128-byte
/// aligned), so it gets libbson's alignment and more than its size (128 bytes).
private func newIteratorMemory() -> UnsafeMutableRawPointer {
    let memory = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 128)
    memory.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
    return memory
}
