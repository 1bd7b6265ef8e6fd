import FerryCore
import FerryPluginKit
import Foundation

/// A plugin's reference page in Markdown, written from what the plugin itself
/// declares (descriptor and config schema), so the page cannot disagree with it.
struct PluginReferencePage {
    let plugin: LoadedPlugin
    /// Why the example pipeline does not pass `ferry validate`, or nil when it does:
    /// an option whose shape the schema leaves open cannot be filled in from it.
    var exampleProblem: String? = nil

    var fileName: String { "\(plugin.name).md" }

    var markdown: String {
        var out = "# `\(plugin.name)`\n\n"
        out += "<!-- Written by `ferry plugins --markdown DIR` from the plugin's descriptor and config schema: edit the plugin, not this page. -->\n\n"
        out += "\(plugin.summary.isEmpty ? "(no description)" : plugin.summary)\n\n"
        out += "| | |\n| --- | --- |\n"
        out += "| kinds | \(plugin.kindNames.joined(separator: ", ")) |\n"
        out += "| version | \(plugin.version) |\n"
        out += "| ABI | \(plugin.abiMajor).\(plugin.abiMinor) |\n"
        out += "| capabilities | \(capabilityNames.isEmpty ? "none" : capabilityNames.joined(separator: ", ")) |\n"
        out += "| file | `\(URL(fileURLWithPath: plugin.path).lastPathComponent)` |\n\n"
        out += "## Options\n\n"
        let properties = plugin.configSchema["properties"]?.objectValue ?? [:]
        if properties.isEmpty {
            out += "None: the plugin takes no `config:`.\n\n"
        } else {
            out += "| option | type | required | default | allowed | description |\n"
            out += "| --- | --- | --- | --- | --- | --- |\n"
            for name in optionOrder(properties) {
                let option = properties[name] ?? .object([:])
                let cells = [
                    "`\(name)`", typeName(option), required.contains(name) ? "yes" : "no",
                    option["default"].map { "`\(inline($0))`" } ?? "—", allowed(option), cell(option["description"]?.stringValue ?? ""),
                ]
                out += "| " + cells.joined(separator: " | ") + " |\n"
            }
            out += "\n"
            if plugin.configSchema["additionalProperties"]?.boolValue == false {
                out += "Any other key is refused by `ferry validate` and `ferry run`, naming the file, line and key.\n\n"
            }
        }
        out += "## Example\n\n"
        if let exampleProblem {
            out += "The required options alone do not make a working config here (`ferry validate` says: \(cell(exampleProblem))); "
            out += "the plugin's README has complete examples. The keys it needs at least:\n\n"
            out += "```yaml norun: the schema leaves the shape of some options open, so this example cannot be complete\n" + example + "```\n"
        } else {
            out += "A pipeline with only the required options, which `ferry validate` accepts:\n\n"
            out += "```yaml pipeline\n" + example + "```\n"
        }
        return out
    }

    private var required: Set<String> {
        Set((plugin.configSchema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    private var capabilityNames: [String] {
        let names: [(PluginCapabilities, String)] = [
            (.shardedRead, "sharded read"), (.upsert, "upsert"), (.preview, "preview (dry run)"), (.estimate, "estimate"),
            (.orderedSink, "ordered sink"), (.resumable, "resumable"),
        ]
        return names.filter { plugin.capabilities.contains($0.0) }.map(\.1)
    }

    /// Required options first, then the rest, each group by name.
    private func optionOrder(_ properties: [String: JSONValue]) -> [String] {
        properties.keys.sorted { (required.contains($0) ? 0 : 1, $0) < (required.contains($1) ? 0 : 1, $1) }
    }

    private func typeName(_ option: JSONValue) -> String {
        let type: String
        if let name = option["type"]?.stringValue {
            type = name
        } else if let names = option["type"]?.arrayValue?.compactMap(\.stringValue), !names.isEmpty {
            type = names.joined(separator: " or ")
        } else {
            type = "any"
        }
        if type == "array", let items = option["items"]?["type"]?.stringValue { return "array of \(items)" }
        return type
    }

    private func allowed(_ option: JSONValue) -> String {
        var parts: [String] = []
        if let values = option["enum"]?.arrayValue { parts.append(values.map { "`\(inline($0))`" }.joined(separator: ", ")) }
        if let minimum = option["minimum"] { parts.append("≥ \(inline(minimum))") }
        if let maximum = option["maximum"] { parts.append("≤ \(inline(maximum))") }
        return parts.isEmpty ? "—" : parts.joined(separator: "; ")
    }

    private func inline(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.jsonText
    }

    private func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// The plugin in its first role, with every required option set.
    var example: String {
        let kinds = plugin.kindNames
        let properties = plugin.configSchema["properties"]?.objectValue ?? [:]
        let options = optionOrder(properties).filter { required.contains($0) }
        // `first` opens the stage's mapping; `indent` lines up the keys under it.
        func stage(first: String, indent: String) -> String {
            var text = "\(first)plugin: \(plugin.name)\n"
            if !options.isEmpty {
                text += "\(indent)config:\n"
                for name in options {
                    text += "\(indent)  \(name): \(exampleValue(name: name, option: properties[name] ?? .object([:])))\n"
                }
            }
            return text
        }
        let source = "source: {plugin: generate, config: {count: 10}}\n"
        let sink = "sink: {plugin: blackhole}\n"
        var yaml = "name: \(plugin.name.replacingOccurrences(of: "_", with: "-"))-example\n"
        if kinds.contains("source") {
            yaml += "source:\n" + stage(first: "  ", indent: "  ") + sink
        } else if kinds.contains("transform") {
            yaml += source + "transforms:\n" + stage(first: "  - ", indent: "    ") + sink
        } else {
            yaml += source + "sink:\n" + stage(first: "  ", indent: "  ")
        }
        return yaml
    }

    private func exampleValue(name: String, option: JSONValue) -> String {
        if let first = option["enum"]?.arrayValue?.first { return inline(first) }
        let lower = name.lowercased()
        let text =
            lower.contains("dsn") ? "postgresql://etl@127.0.0.1:5432/shop"
            : lower.contains("uri") ? "mongodb://127.0.0.1:27017"
            : lower.contains("path") ? "data/records.jsonl"
            : "example"
        switch typeName(option) {
        case "integer": return option["minimum"].map(inline) ?? "1"
        case "number": return "1"
        case "boolean": return "true"
        case "array of string": return "[\(text)]"
        case "object": return "{}"
        case "any": return "[]"
        default: return "\"\(text)\""
        }
    }
}
