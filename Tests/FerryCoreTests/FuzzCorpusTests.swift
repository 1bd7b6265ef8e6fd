import Foundation
import Testing

/// Replays the committed fuzz corpus, Tests/Fuzz/corpus/<target>/, through the
/// same bodies scripts/fuzz.sh runs under libFuzzer, here without a sanitizer:
/// every input written by hand or kept from a fuzzing run goes on passing its
/// target's invariants. Each input must also finish quickly, so an input that
/// once made a parser slow (an alias bomb) stays fast.
@Suite("FuzzCorpus")
struct FuzzCorpusTests {
    static let corpusRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    @Test("every corpus folder is a target's, and every target has seeds")
    func foldersMatchTargets() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.corpusRoot.path).sorted()
        #expect(folders == FuzzTargets.all.map(\.name).sorted())
    }

    @Test("a target's corpus keeps its invariants", arguments: FuzzTargets.all.map(\.name))
    func replay(target: String) throws {
        let body = try #require(FuzzTargets.body(named: target))
        let folder = Self.corpusRoot.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names.count >= 3, "Tests/Fuzz/corpus/\(target) has \(names.count) inputs")
        for name in names {
            let input = try [UInt8](Data(contentsOf: folder.appendingPathComponent(name)))
            let clock = ContinuousClock()
            let started = clock.now
            do {
                try body(input)
            } catch {
                Issue.record("Tests/Fuzz/corpus/\(target)/\(name): \(error)")
            }
            let elapsed = clock.now - started
            #expect(elapsed < .seconds(5), "Tests/Fuzz/corpus/\(target)/\(name) took \(elapsed)")
        }
    }
}
