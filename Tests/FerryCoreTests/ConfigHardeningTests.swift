@testable import FerryCore
import Foundation
import Testing

/// Hostile or careless pipeline files: they fail fast, say where, and never
/// echo a value that came from a secret.
@Suite("Config hardening")
struct ConfigHardeningTests {
    func parse(_ yaml: String, environment: [String: String] = [:]) -> String? {
        do {
            _ = try PipelineLoader(interpolation: Interpolation(environment: environment)).parse(yaml: yaml, file: "h.yaml")
            return nil
        } catch {
            return error.description
        }
    }

    @Test("a billion-laughs file is refused at its first anchor, before anything expands")
    func billionLaughs() throws {
        var yaml = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...12 {
            let previous = (0..<10).map { _ in "*a\(level - 1)" }.joined(separator: ", ")
            yaml += "a\(level): &a\(level) [\(previous)]\n"
        }
        yaml += "source: {plugin: generate}\nsink: {plugin: blackhole}\n"
        let started = Date()
        let message = try #require(parse(yaml))
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(message.contains("h.yaml:1: YAML anchors"))
    }

    @Test("an alias alone is refused with its line")
    func alias() throws {
        let message = try #require(parse("source: {plugin: generate}\nsink: *nothing\n"))
        #expect(message.contains("h.yaml:2"))
        #expect(message.contains("alias"))
    }

    @Test("nesting deeper than any pipeline needs is refused, not recursed into")
    func deepNesting() throws {
        let depth = 100_000
        let yaml = "source: {plugin: generate}\nsink: {plugin: blackhole}\nx: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        let started = Date()
        let message = try #require(parse(yaml))
        #expect(Date().timeIntervalSince(started) < 5)
        // libyaml's own nesting limit may speak first; either way, with the line.
        #expect(message.contains("nest"), "\(message)")
        #expect(message.contains("h.yaml:3"), "\(message)")
    }

    @Test("a value from ${file:…} or ${VAR} is never echoed in an error", arguments: ["mode", "max_ratio", "batch_size", "plugin", "name"])
    func secretsStayOut(field: String) throws {
        let directory = try TestSupport.temporaryDirectory("secret-field")
        let secret = "S3ntinel-\(UUID().uuidString.prefix(8))"
        try secret.write(toFile: "\(directory)/secret", atomically: true, encoding: .utf8)
        var yaml = "source: {plugin: generate}\nsink: {plugin: blackhole}\n"
        switch field {
        case "mode": yaml += "mode: \"${file:\(directory)/secret}\"\n"
        case "max_ratio": yaml += "dead_letters: {max_ratio: \"${file:\(directory)/secret}\"}\n"
        case "batch_size": yaml += "batch_size: \"${SECRET_VALUE}\"\n"
        case "name": yaml += "name: \"${SECRET_VALUE}!\"\n"
        default: yaml = "source: {plugin: \"${SECRET_VALUE}\"}\nsink: {plugin: blackhole}\n"
        }
        var message = parse(yaml, environment: ["SECRET_VALUE": secret]) ?? ""
        if field == "plugin" {
            // The name is fine as YAML; resolving it against the plugins is what fails.
            let plugins = try TestSupport.pluginDirectory(["FerryBlackhole"])
            do {
                let pipeline = try PipelineLoader(interpolation: Interpolation(environment: ["SECRET_VALUE": secret])).parse(yaml: yaml, file: "h.yaml")
                _ = try PipelinePlan.resolve(pipeline, catalog: PluginCatalog(directories: [plugins]))
            } catch {
                message = error.description
            }
        }
        #expect(!message.isEmpty, "no error for \(field)")
        #expect(!message.contains(secret), "\(message)")
        #expect(!message.contains(secret.prefix(12)), "\(message)")
    }

    @Test("a whole env file through ${file:…} is hidden line by line, values too")
    func environFile() throws {
        let directory = try TestSupport.temporaryDirectory("secret-environ")
        let token = "tok-\(UUID().uuidString)"
        try "HOME=/root\0FERRY_API_TOKEN=\(token)\0PGPASSWORD=pw-\(token)\0".write(
            toFile: "\(directory)/environ", atomically: true, encoding: .utf8)
        let message = try #require(parse("source: {plugin: generate}\nsink: {plugin: blackhole}\nmode: \"${file:\(directory)/environ}\"\n"))
        #expect(!message.contains(token))
        #expect(message.contains("mode"))
        #expect(message.contains("${file:…}"))
        #expect(!SecretMasking.mask("echo: \(token)").contains(token))
    }

    @Test("an unset variable is reported once, without a second 'missing' for the same key")
    func unsetVariableOnce() throws {
        let message = try #require(parse("source: {plugin: \"${NOT_SET_ANYWHERE_42}\"}\nsink: {plugin: blackhole}\n"))
        #expect(message.contains("NOT_SET_ANYWHERE_42 is not set"))
        #expect(!message.contains("missing"))
        #expect(message.split(separator: "\n").count == 1)
    }

    @Test("${file:…} of a device, a folder or a huge file is refused without reading it whole", arguments: ["/dev/zero", "/", "big"])
    func secretFileKinds(path: String) throws {
        var target = path
        if path == "big" {
            let directory = try TestSupport.temporaryDirectory("secret-big")
            target = "\(directory)/big"
            try Data(repeating: 65, count: Interpolation.maxSecretBytes + 10).write(to: URL(fileURLWithPath: target))
        }
        let started = Date()
        let message = try #require(parse("source: {plugin: generate}\nsink: {plugin: blackhole}\nmode: \"${file:\(target)}\"\n"))
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(message.contains("secret file"), "\(message)")
    }

    @Test("a pipeline path that is no regular file is refused without reading it")
    func notARegularFile() throws {
        do {
            _ = try PipelineLoader().load(path: "/dev/zero")
            Issue.record("/dev/zero was read as a pipeline")
        } catch {
            #expect(error.description.contains("not a regular file"))
        }
    }
}
