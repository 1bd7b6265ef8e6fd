import FerryCore
import FerryPluginKit

extension APIRoutes {
    /// One pipeline as GET /pipelines and GET /pipelines/{name} show it: its
    /// plan, its schedule if it has one, and its last run.
    static func describe(pipeline name: String, _ registry: RunRegistry, _ scheduler: Scheduler) -> JSONValue {
        let plan = registry.pipelines[name]!
        var object: [String: JSONValue] = [
            "name": .string(name), "file": .string(plan.pipeline.file), "mode": .string(plan.pipeline.mode.name),
            "source": .string(plan.source.plugin.name), "sink": .string(plan.sink.plugin.name),
            "transforms": .array(plan.transforms.map { .string($0.plugin.name) }),
            "batchSize": .integer(Int64(plan.pipeline.batchSize)), "workers": .integer(Int64(plan.pipeline.workers)),
            "running": .bool(registry.isRunning(pipeline: name)),
        ]
        if let schedule = scheduler.schedule(pipeline: name) {
            object["schedule"] = .string(schedule.expression)
            object["timezone"] = .string(schedule.timeZone.identifier)
            if let next = scheduler.nextFire(pipeline: name) { object["nextFire"] = .string(RunRegistry.time(next)) }
            object["misfires"] = .integer(Int64(scheduler.misfires(pipeline: name)))
        }
        if let last = registry.lastRunSummary(pipeline: name) { object["lastRun"] = last }
        return .object(object)
    }
}
