/// Why a value could not be read, written or converted, before the step that
/// hit it is known ("'address' is a string, not a document").
struct ValueError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A record a step refuses: which step, what it was doing and why. Its
/// description is the dead-letter reason.
struct StepFailure: Error, CustomStringConvertible {
    /// The step's position in `steps`.
    let stepIndex: Int
    /// What the step does, with its fields: `cast 'price' to decimal`.
    let action: String
    let problem: ValueError

    var description: String { "map: steps[\(stepIndex)] \(action): \(problem)" }
}

/// A config problem found at open, at a field such as `steps[2].cast.to`.
struct MapConfigError: Error, CustomStringConvertible {
    let field: String
    let problem: String

    var description: String { "\(field): \(problem)" }
}
