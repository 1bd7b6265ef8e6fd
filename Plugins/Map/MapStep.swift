import FerryPluginKit

/// One compiled step of the `steps` list and what it does to a record.
struct MapStep: Sendable {
    enum Action: Sendable {
        /// Moves a value; a missing `from` is a no-op.
        case rename(from: FieldPath, to: FieldPath)
        /// Sets a constant, replacing what was there.
        case set(FieldPath, BSONValue)
        /// Sets a constant only where the field is missing or null.
        case setDefault(FieldPath, BSONValue)
        /// Removes fields; missing ones are skipped.
        case drop([FieldPath])
        /// Copies a value; a missing `from` is a no-op.
        case copy(from: FieldPath, to: FieldPath)
        /// Converts a value in place; missing is skipped, null stays null.
        case cast(FieldPath, CastTarget)
        /// Sets a string built from other fields.
        case template(FieldPath, FieldTemplate)
    }

    /// The step's position in `steps`, for reasons.
    let index: Int
    let action: Action

    /// Applies the step to one record.
    ///
    /// - Throws: `StepFailure` (the dead-letter reason) when the record cannot
    ///   take the step: a value that does not convert, a path blocked by a scalar.
    func apply(to document: inout BSONDocument) throws(StepFailure) {
        do throws(ValueError) {
            try perform(on: &document)
        } catch {
            throw StepFailure(stepIndex: index, action: summary, problem: error)
        }
    }

    private func perform(on document: inout BSONDocument) throws(ValueError) {
        switch action {
        case .rename(let from, let to):
            if document.renameSibling(from: from, to: to) { return }
            guard let value = document.removeValue(at: from) else { return }
            try document.setValue(value, at: to)
        case .set(let field, let value):
            try document.setValue(value, at: field)
        case .setDefault(let field, let value):
            if let existing = document.value(at: field), existing != .null { return }
            try document.setValue(value, at: field)
        case .drop(let fields):
            for field in fields { document.removeValue(at: field) }
        case .copy(let from, let to):
            guard let value = document.value(at: from) else { return }
            try document.setValue(value, at: to)
        case .cast(let field, let target):
            guard let value = document.value(at: field) else { return }
            let converted = try target.convert(value)
            if converted != value { try document.setValue(converted, at: field) }
        case .template(let field, let template):
            try document.setValue(.string(try template.render(document)), at: field)
        }
    }

    /// What the step does, as reasons name it: `cast 'price' to decimal`.
    var summary: String {
        switch action {
        case .rename(let from, let to): "rename '\(from)' to '\(to)'"
        case .set(let field, _): "set '\(field)'"
        case .setDefault(let field, _): "default '\(field)'"
        case .drop(let fields): "drop " + fields.map { "'\($0)'" }.joined(separator: ", ")
        case .copy(let from, let to): "copy '\(from)' to '\(to)'"
        case .cast(let field, let target): "cast '\(field)' to \(target.rawValue)"
        case .template(let field, _): "template '\(field)'"
        }
    }
}
