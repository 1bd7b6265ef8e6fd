import FerryPluginKit

/// Reading, writing and removing values at dot paths. A number in a path indexes
/// into an array; anything else on the way that is not a document blocks it.
extension BSONDocument {
    /// The value at `path`, or nil when any part of the path is missing.
    func value(at path: FieldPath) -> BSONValue? {
        var components = path.components[...]
        guard let first = components.popFirst(), var current = self[first] else { return nil }
        for component in components {
            switch current {
            case .document(let document):
                guard let next = document[component] else { return nil }
                current = next
            case .array(let items):
                guard let index = Int(component), items.indices.contains(index) else { return nil }
                current = items[index]
            default:
                return nil
            }
        }
        return current
    }

    /// Sets the value at `path`, creating missing (or null) intermediate documents.
    /// An existing key keeps its position; a new key goes last.
    ///
    /// - Throws: `ValueError` when a string, number or other scalar sits where the
    ///   path needs a document, or an array index is not a number or past the end.
    mutating func setValue(_ value: BSONValue, at path: FieldPath) throws(ValueError) {
        try setValue(value, at: path.components[...], of: path)
    }

    /// Removes the value at `path` and returns it (nil when it was not there).
    /// Removing an array element shifts the ones after it down.
    @discardableResult
    mutating func removeValue(at path: FieldPath) -> BSONValue? {
        removeValue(at: path.components[...])
    }

    /// Renames the key in place when `to` is a sibling of `from` that does not
    /// exist yet, so a renamed field keeps its position. False when it cannot.
    mutating func renameSibling(from: FieldPath, to: FieldPath) -> Bool {
        guard from.parentComponents == to.parentComponents else { return false }
        return withDocument(at: from.parentComponents) { document in
            guard document[to.lastKey] == nil,
                let index = document.fields.firstIndex(where: { $0.key == from.lastKey })
            else { return false }
            document.fields[index].key = to.lastKey
            return true
        } ?? false
    }

    /// `components` is a slice of `path.components`, so its start index says how
    /// far along the path this document sits (for messages, without building them).
    fileprivate mutating func setValue(_ value: BSONValue, at components: ArraySlice<String>, of path: FieldPath) throws(ValueError) {
        let key = components[components.startIndex]
        let rest = components.dropFirst()
        if rest.isEmpty {
            self[key] = value
            return
        }
        if let index = fields.firstIndex(where: { $0.key == key }) {
            try fields[index].value.setValue(value, at: rest, of: path)
        } else {
            var child = BSONDocument()
            try child.setValue(value, at: rest, of: path)
            fields.append((key: key, value: .document(child)))
        }
    }

    fileprivate mutating func removeValue(at components: ArraySlice<String>) -> BSONValue? {
        let key = components[components.startIndex]
        let rest = components.dropFirst()
        guard let index = fields.firstIndex(where: { $0.key == key }) else { return nil }
        if rest.isEmpty { return fields.remove(at: index).value }
        return fields[index].value.removeValue(at: rest)
    }

    /// Runs `body` on the document at `components` (self when empty); nil when
    /// there is no document there.
    fileprivate mutating func withDocument<Result>(at components: ArraySlice<String>, _ body: (inout BSONDocument) -> Result) -> Result? {
        guard let key = components.first else { return body(&self) }
        guard let index = fields.firstIndex(where: { $0.key == key }) else { return nil }
        return fields[index].value.withDocument(at: components.dropFirst(), body)
    }
}

extension BSONValue {
    // Each mutating walk parks `.null` in self while it edits the unwrapped
    // container, so the container is uniquely referenced and edited in place.

    fileprivate mutating func setValue(_ value: BSONValue, at components: ArraySlice<String>, of path: FieldPath) throws(ValueError) {
        // The path up to this value, for messages: `'address' is a string, not a document`.
        var here: String { path.components[..<components.startIndex].joined(separator: ".") }
        switch self {
        case .document(var document):
            self = .null
            defer { self = .document(document) }
            try document.setValue(value, at: components, of: path)
        case .null:
            var document = BSONDocument()
            try document.setValue(value, at: components, of: path)
            self = .document(document)
        case .array(var items):
            let component = components[components.startIndex]
            guard let index = Int(component), index >= 0 else {
                throw ValueError("'\(here)' is an array and '\(component)' is not an index")
            }
            guard index < items.count else {
                throw ValueError("'\(here)' has \(items.count) elements, no index \(index)")
            }
            self = .null
            defer { self = .array(items) }
            let rest = components.dropFirst()
            if rest.isEmpty {
                items[index] = value
            } else {
                try items[index].setValue(value, at: rest, of: path)
            }
        default:
            throw ValueError("'\(here)' is \(typeName.withArticle), not a document")
        }
    }

    fileprivate mutating func removeValue(at components: ArraySlice<String>) -> BSONValue? {
        switch self {
        case .document(var document):
            self = .null
            defer { self = .document(document) }
            return document.removeValue(at: components)
        case .array(var items):
            let component = components[components.startIndex]
            guard let index = Int(component), items.indices.contains(index) else { return nil }
            self = .null
            defer { self = .array(items) }
            let rest = components.dropFirst()
            return rest.isEmpty ? items.remove(at: index) : items[index].removeValue(at: rest)
        default:
            return nil
        }
    }

    fileprivate mutating func withDocument<Result>(at components: ArraySlice<String>, _ body: (inout BSONDocument) -> Result) -> Result? {
        switch self {
        case .document(var document):
            self = .null
            defer { self = .document(document) }
            return document.withDocument(at: components, body)
        case .array(var items):
            guard let component = components.first, let index = Int(component), items.indices.contains(index) else { return nil }
            self = .null
            defer { self = .array(items) }
            return items[index].withDocument(at: components.dropFirst(), body)
        default:
            return nil
        }
    }
}
