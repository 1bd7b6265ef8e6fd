/// A dot path into nested documents (`address.city`, `items.0.sku`), split once
/// at open so records never pay for parsing it.
struct FieldPath: CustomStringConvertible, Equatable, Sendable {
    /// The path's keys, outermost first; a number also indexes into an array.
    let components: [String]
    /// The path as written in the config, for messages.
    let description: String

    /// Nil when the text is empty or has an empty part (`a..b`, `.a`, `a.`).
    init?(_ text: String) {
        let components = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !text.isEmpty, !components.contains(where: \.isEmpty) else { return nil }
        self.components = components
        self.description = text
    }

    /// The path of the document that holds the last key (empty at the top level).
    var parentComponents: ArraySlice<String> { components.dropLast() }
    var lastKey: String { components[components.count - 1] }
}
