import FerryCore
import Foundation
import Testing

@Suite("Pipeline config")
struct PipelineConfigTests {
    @Test("unknown fields and missing stages are reported with file and line")
    func structure() throws {
        let errors = #expect(throws: ConfigErrors.self) {
            try PipelineLoader().parse(
                yaml: """
                    name: demo
                    source:
                      plugin: generate
                    batch_sise: 10
                    """, file: "demo.yaml")
        }
        let text = errors?.description ?? ""
        #expect(text.contains("demo.yaml:4: batch_sise: unknown field"))
        #expect(text.contains("sink: missing"))
    }

    @Test("YAML syntax errors carry the line")
    func syntax() {
        let errors = #expect(throws: ConfigErrors.self) {
            try PipelineLoader().parse(yaml: "source:\n  plugin: [unclosed\nsink: x\n", file: "broken.yaml")
        }
        #expect(errors?.description.contains("broken.yaml:") == true)
        #expect(errors?.description.contains("invalid YAML") == true)
    }

    @Test("a plugin config is checked against the plugin's schema, with line and plugin")
    func schema() throws {
        let plugins = try TestSupport.pluginDirectory(["FerryGenerate", "FerryBlackhole"])
        let errors = #expect(throws: ConfigErrors.self) {
            try TestSupport.plan(
                """
                source:
                  plugin: generate
                  config:
                    count: lots
                    colour: red
                sink: {plugin: blackhole}
                """, plugins: plugins, file: "p.yaml")
        }
        let text = errors?.description ?? ""
        #expect(text.contains("p.yaml:4: source.config.count: expected an integer, got string (plugin 'generate')"))
        #expect(text.contains("p.yaml:5: source.config.colour: unknown field"))
    }

    @Test("a stage with a plugin of the wrong kind is refused")
    func wrongKind() throws {
        let plugins = try TestSupport.pluginDirectory(["FerryGenerate", "FerryBlackhole"])
        let errors = #expect(throws: ConfigErrors.self) {
            try TestSupport.plan("source: {plugin: blackhole}\nsink: {plugin: blackhole}\n", plugins: plugins, file: "k.yaml")
        }
        #expect(errors?.description.contains("k.yaml:1: source.plugin: plugin 'blackhole' is not a source") == true)
    }

    @Test("${VAR}, defaults and ${file:…} are expanded; an unset variable is an error with its line")
    func interpolation() throws {
        let directory = try TestSupport.temporaryDirectory()
        try "s3cret\n".write(toFile: "\(directory)/secret", atomically: true, encoding: .utf8)
        let loader = PipelineLoader(interpolation: Interpolation(environment: ["COUNT": "42"]))
        let pipeline = try loader.parse(
            yaml: """
                source:
                  plugin: generate
                  config:
                    count: ${COUNT}
                    token: ${file:\(directory)/secret}
                    x: "${MISSING:-fallback}"
                sink: {plugin: blackhole}
                """, file: "i.yaml")
        #expect(pipeline.source.configJSON == #"{"count":42,"token":"s3cret","x":"fallback"}"#)
        let errors = #expect(throws: ConfigErrors.self) {
            try loader.parse(yaml: "source: {plugin: generate}\nsink:\n  plugin: blackhole\n  config: {dsn: \"${NOPE}\"}\n", file: "j.yaml")
        }
        #expect(errors?.description.contains("j.yaml:4: sink.config.dsn: environment variable NOPE is not set") == true)
    }

    @Test("passwords in URLs are masked")
    func masking() {
        #expect(SecretMasking.mask("connect postgresql://bob:hunter2@db:5432/x failed") == "connect postgresql://bob:***@db:5432/x failed")
        #expect(SecretMasking.mask("mongodb://h1,h2/?x=1") == "mongodb://h1,h2/?x=1")
        #expect(SecretMasking.mask("host=db user=bob password=hunter2 dbname=x") == "host=db user=bob password=*** dbname=x")
        #expect(SecretMasking.mask("host=db PASSWORD = 'it''s secret' port=5") == "host=db PASSWORD = *** port=5")
    }
}
