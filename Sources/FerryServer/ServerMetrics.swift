import FerryCore
import Foundation
import Metrics
import Prometheus

/// The daemon's metrics, through swift-metrics with a Prometheus registry
/// behind it, so plugins' own metrics (host API `metric`) land in the same
/// /metrics output.
final class ServerMetrics: PluginMetricsSink, @unchecked Sendable {
    let registry: PrometheusCollectorRegistry
    private let inFlight: Metrics.Gauge
    let pluginLoadFailures: Metrics.Counter

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        inFlight = Metrics.Gauge(label: "ferry_runs_in_flight")
        pluginLoadFailures = Metrics.Counter(label: "ferry_plugin_load_failures_total")
        inFlight.record(0)
        pluginLoadFailures.increment(by: 0)
    }

    /// Makes every series exist from the start (a scrape before the first run
    /// sees zeros, not gaps).
    func register(pipeline: String) {
        for name in ["read", "written", "filtered", "dead_lettered"] {
            Metrics.Counter(label: "ferry_records_\(name)_total", dimensions: [("pipeline", pipeline)]).increment(by: 0)
        }
        Metrics.Counter(label: "ferry_schedule_misfires_total", dimensions: [("pipeline", pipeline)]).increment(by: 0)
        // The diff gauges stay absent until a diff finishes: a 0 would claim a target that matches.
        for outcome in Self.diffOutcomes {
            Metrics.Counter(label: "ferry_diffs_total", dimensions: [("pipeline", pipeline), ("outcome", outcome)]).increment(by: 0)
        }
    }

    /// `ferry_diffs_total`'s outcomes: a verdict, or none (a failure, a crash, a cancel).
    static let diffOutcomes = ["equal", "different", "failed"]

    /// A diff's gauges are its pipeline's last finished comparison; a diff
    /// without a verdict leaves them as they were.
    func diffFinished(pipeline: String, result: DiffResult) {
        let dimensions = [("pipeline", pipeline)]
        Metrics.Counter(label: "ferry_diffs_total", dimensions: dimensions + [("outcome", result.verdict)]).increment()
        guard let counts = result.counts else { return }
        Metrics.Gauge(label: "ferry_diff_missing", dimensions: dimensions).record(counts.missing)
        Metrics.Gauge(label: "ferry_diff_extra", dimensions: dimensions).record(counts.extra)
        Metrics.Gauge(label: "ferry_diff_changed", dimensions: dimensions).record(counts.changed)
    }

    private var running = 0
    private let lock = NSLock()

    func runStarted(pipeline: String) {
        inFlight.record(lock.withLock { running += 1; return running })
    }

    func runFinished(pipeline: String, report: RunReport, duration: Double) {
        inFlight.record(lock.withLock { running -= 1; return running })
        let dimensions = [("pipeline", pipeline)]
        let stats = report.statistics
        Metrics.Counter(label: "ferry_records_read_total", dimensions: dimensions).increment(by: stats.read)
        Metrics.Counter(label: "ferry_records_written_total", dimensions: dimensions).increment(by: stats.written)
        Metrics.Counter(label: "ferry_records_filtered_total", dimensions: dimensions).increment(by: stats.filtered)
        Metrics.Counter(label: "ferry_records_dead_lettered_total", dimensions: dimensions).increment(by: stats.deadLettered)
        Metrics.Counter(label: "ferry_runs_total", dimensions: dimensions + [("outcome", report.outcome.name)]).increment()
        if let failure = report.failure, failure.kind == .crash {
            Metrics.Counter(label: "ferry_run_crashes_total", dimensions: dimensions + [("plugin", failure.plugin ?? "unknown")]).increment()
        }
        Metrics.Timer(label: "ferry_run_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(duration * 1e9))
        if case .completed = report.outcome, !report.dryRun {
            Metrics.Gauge(label: "ferry_last_success_timestamp_seconds", dimensions: dimensions).record(Date().timeIntervalSince1970)
        }
    }

    func misfire(pipeline: String) {
        Metrics.Counter(label: "ferry_schedule_misfires_total", dimensions: [("pipeline", pipeline)]).increment()
    }

    /// Plugin metrics from the host API, prefixed so they cannot collide with ours.
    func record(plugin: String, name: String, value: Double, isCounter: Bool) {
        let label = "ferry_plugin_" + String(name.map { $0.isLetter || $0.isNumber ? $0 : "_" })
        if isCounter {
            Metrics.FloatingPointCounter(label: label, dimensions: [("plugin", plugin)]).increment(by: value)
        } else {
            Metrics.Gauge(label: label, dimensions: [("plugin", plugin)]).record(value)
        }
    }

    /// The Prometheus text exposition.
    func exposition() -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4096)
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
