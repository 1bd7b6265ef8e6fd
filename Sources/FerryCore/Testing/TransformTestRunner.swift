import CFerryPlugin
import FerryPluginKit
import Logging

/// Runs a pipeline's `tests:` through the real transform plugins (no source,
/// no sink) and compares what comes out, field by field.
public struct TransformTestRunner {
    public struct Outcome: Sendable {
        public var name: String
        public var line: Int
        /// Empty when the test passed.
        public var failures: [String]
        public var passed: Bool { failures.isEmpty }
    }

    public let plan: PipelinePlan
    let logger: Logger

    public init(plan: PipelinePlan, logger: Logger) {
        self.plan = plan
        self.logger = logger
    }

    public func run(_ tests: [TransformTestCase]) -> [Outcome] {
        tests.map(run)
    }

    func run(_ test: TransformTestCase) -> Outcome {
        var outcome = Outcome(name: test.name, line: test.line, failures: [])
        let builder = BatchBuilder()
        for (index, record) in test.input.enumerated() {
            do {
                let bytes = try ExtendedJSON.parse(record.jsonText)
                bytes.withUnsafeBytes { builder.append(encoded: $0) }
            } catch {
                outcome.failures.append("input[\(index)] is not a valid record: \(error)")
                return outcome
            }
        }
        var batch = ferry_batch()
        builder.finish(into: &batch)
        defer { BatchBuilder.release(&batch) }

        let cancel = CancelFlag()
        var current = batch
        var produced: [(HostedInstance, UnsafeMutablePointer<ferry_batch>)] = []
        defer {
            for (instance, output) in produced.reversed() {
                instance.release(&output.pointee)
                output.deallocate()
                instance.close()
            }
        }
        var dropped = 0
        var deadLettered = 0
        var reasons: [String] = []
        for index in test.transforms ?? Array(plan.transforms.indices) {
            let stage = plan.transforms[index]
            do {
                let instance = try HostedInstance(
                    plugin: stage.plugin,
                    options: InstanceOptions(
                        kind: .transform, stage: stage.config.role, configJSON: stage.config.configJSON, mode: plan.pipeline.mode,
                        batchSize: max(1, test.input.count), pipelineName: plan.pipeline.name),
                    cancel: cancel, logger: logger)
                let output = UnsafeMutablePointer<ferry_batch>.allocate(capacity: 1)
                output.initialize(to: ferry_batch())
                var result = ferry_result()
                do {
                    try withUnsafePointer(to: &current) { try instance.transform($0, &output.pointee, &result) }
                } catch {
                    output.deallocate()
                    instance.close()
                    throw error
                }
                produced.append((instance, output))
                try BatchView(output.pointee).validateFraming()
                let rejected = Int(result.reject_count)
                for offset in 0..<rejected {
                    reasons.append(result.rejects[offset].reason.map { String(cString: $0) } ?? "?")
                }
                deadLettered += rejected
                dropped += max(0, Int(current.count) - Int(output.pointee.count) - rejected)
                current = output.pointee
            } catch {
                outcome.failures.append("\(stage.config.role) (\(stage.plugin.name)): \(error)")
                return outcome
            }
        }
        let actual = BatchView(current).map { $0.decode() }

        if let expected = test.expectDropped, expected != dropped {
            outcome.failures.append("expected \(expected) records dropped, \(dropped) were")
        }
        if let expected = test.expectDeadLettered, expected != deadLettered {
            let why = reasons.isEmpty ? "" : " (reasons: \(reasons.joined(separator: "; ")))"
            outcome.failures.append("expected \(expected) records dead-lettered, \(deadLettered) were\(why)")
        }
        if let expect = test.expect {
            if expect.count != actual.count {
                outcome.failures.append("expected \(expect.count) output records, got \(actual.count)")
            }
            for (index, (wanted, got)) in zip(expect, actual).enumerated() {
                guard let bytes = try? ExtendedJSON.parse(wanted.jsonText) else {
                    outcome.failures.append("expect[\(index)] is not a valid record")
                    continue
                }
                let wantedDocument = bytes.withUnsafeBytes { DocumentView($0).decode() }
                outcome.failures += RecordDiff.compare(expected: wantedDocument, actual: got, path: "record \(index)")
            }
            if actual.count > expect.count {
                for (index, extra) in actual.enumerated().dropFirst(expect.count) {
                    outcome.failures.append("record \(index): unexpected \(RecordDiff.render(.document(extra)))")
                }
            }
        }
        return outcome
    }
}
