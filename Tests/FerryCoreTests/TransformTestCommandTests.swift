import FerryCore
import Foundation
import Testing

@Suite("ferry test", .serialized)
struct TransformTestCommandTests {
    func setUp() throws -> (directory: String, plugins: String) {
        let directory = try TestSupport.temporaryDirectory()
        let plugins = try TestSupport.pluginDirectory(TestSupport.standardPlugins)
        try TestSupport.compilePlugin(
            source: TestSupport.repoRoot.appendingPathComponent("examples/c-plugin/sample.c").path, output: "\(plugins)/libsample.so")
        return (directory, plugins)
    }

    @Test("passing tests print a count and exit 0")
    func passing() throws {
        let (directory, plugins) = try setUp()
        try """
            source: {plugin: generate}
            transforms:
              - plugin: sample
                config: {every: 2}
            sink: {plugin: blackhole}
            tests:
              - name: keeps every other record
                input: [{sku: A, n: 1}, {sku: B, n: 2}, {sku: C, n: 3}]
                expect: [{sku: A, n: 1}, {sku: C, n: 3}]
                expect_dropped: 1
              - name: nothing is dead-lettered
                input: [{sku: A}]
                expect_dead_lettered: 0
            """.write(toFile: "\(directory)/ok.yaml", atomically: true, encoding: .utf8)
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["test", "\(directory)/ok.yaml", "--plugins", plugins])
        #expect(result.status == 0)
        #expect(result.stdout.contains("2 passed, 0 failed"))
    }

    @Test("a failing test prints a field-by-field diff and exits 1")
    func failing() throws {
        let (directory, plugins) = try setUp()
        try """
            source: {plugin: generate}
            transforms:
              - plugin: sample
                config: {every: 2}
            sink: {plugin: blackhole}
            tests:
              - name: wrong on purpose
                input: [{sku: A, price: 1.5}, {sku: B}, {sku: C, price: 2}]
                expect: [{sku: A, price: "1.5"}, {sku: D, price: 2, extra: true}]
            """.write(toFile: "\(directory)/bad.yaml", atomically: true, encoding: .utf8)
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["test", "\(directory)/bad.yaml", "--plugins", plugins])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL"))
        #expect(result.stdout.contains("bad.yaml:7: wrong on purpose"))
        #expect(result.stdout.contains(#"record 0: field 'price': expected "1.5" (string), got 1.5 (double)"#))
        #expect(result.stdout.contains(#"record 1: field 'sku': expected "D" (string), got "C" (string)"#))
        #expect(result.stdout.contains("record 1: field 'extra': expected true (bool), missing"))
        #expect(result.stdout.contains("0 passed, 1 failed"))
    }

    @Test("a malformed tests block is invalid (exit 2) with its line")
    func invalid() throws {
        let (directory, plugins) = try setUp()
        try """
            source: {plugin: generate}
            transforms: [{plugin: sample}]
            sink: {plugin: blackhole}
            tests:
              - name: no expectation
                input: [{a: 1}]
                transforms: [3]
            """.write(toFile: "\(directory)/invalid.yaml", atomically: true, encoding: .utf8)
        let result = try TestSupport.run(TestSupport.ferryExecutable, ["test", "\(directory)/invalid.yaml", "--plugins", plugins])
        #expect(result.status == 2)
        #expect(result.stderr.contains("invalid.yaml:7: tests[0].transforms"))
        #expect(result.stderr.contains("tests[0].expect: a test needs expect"))
    }
}
