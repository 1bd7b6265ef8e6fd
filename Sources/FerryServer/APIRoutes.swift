import FerryCore
import FerryPluginKit
import Foundation
import Hummingbird
import Logging

/// The HTTP API. Every route is listed in `APIRoutes.all`, which the tests
/// compare with docs/openapi.yaml so the two cannot drift apart.
public enum APIRoutes {
    public static let all: [(method: String, path: String)] = [
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
        ("GET", "/pipelines"), ("GET", "/pipelines/{name}"), ("POST", "/pipelines/{name}/runs"),
        ("GET", "/runs"), ("GET", "/runs/{id}"), ("POST", "/runs/{id}/cancel"),
    ]

    struct Dependencies: Sendable {
        let registry: RunRegistry
        let scheduler: Scheduler
        let metrics: ServerMetrics
        let readiness: ReadinessProbe
        let heartbeat: Heartbeat
        let token: BearerToken
        let config: DaemonConfig
    }

    static func router(_ deps: Dependencies) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: BodyLimitMiddleware(limit: deps.config.connectionLimits.maxBodyBytes))

        router.get("healthz") { _, _ -> Response in
            let age = deps.heartbeat.age
            let alive = age < 10
            return json(alive ? .ok : .serviceUnavailable, .object([
                "status": .string(alive ? "ok" : "stuck"), "loopAgeSeconds": .number((age * 1000).rounded() / 1000),
                "runsInFlight": .integer(Int64(deps.registry.inFlight)),
            ]))
        }

        router.get("readyz") { request, _ -> Response in
            let trusted = deps.token.accepts(request.headers[.authorization])
            let probe = deps.readiness
            let (ready, pipelines) = await withCheckedContinuation { continuation in
                Thread { continuation.resume(returning: probe.run()) }.start()
            }
            return json(ready ? .ok : .serviceUnavailable, .object([
                "status": .string(ready ? "ready" : "not ready"),
                "pipelines": .object(Dictionary(uniqueKeysWithValues: pipelines.map { status in
                    (status.name, JSONValue.object([
                        "ready": .bool(status.problems.isEmpty), "problems": .array(status.problems.map { .string($0.text(trusted: trusted)) }),
                    ]))
                })),
            ]))
        }

        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: deps.metrics.exposition())))
        }

        router.get("pipelines") { _, _ -> Response in
            let names = deps.registry.pipelines.keys.sorted()
            return json(.ok, .object(["pipelines": .array(names.map { describe(pipeline: $0, deps.registry, deps.scheduler) })]))
        }

        router.get("pipelines/:name") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard deps.registry.pipelines[name] != nil else { return problem(.notFound, "no pipeline named '\(name)'") }
            return json(.ok, describe(pipeline: name, deps.registry, deps.scheduler))
        }

        router.post("pipelines/:name/runs") { request, context -> Response in
            guard deps.token.isConfigured else { return problem(.unauthorized, "no API token is configured on this daemon: triggers are disabled") }
            guard deps.token.accepts(request.headers[.authorization]) else { return problem(.unauthorized, "missing or wrong bearer token") }
            let name = try context.parameters.require("name")
            let body = try await request.body.collect(upTo: deps.config.connectionLimits.maxBodyBytes)
            var dryRun = false
            var limit: Int?
            if body.readableBytes > 0 {
                guard case .object(let fields)? = try? JSONValue.parse(String(buffer: body)) else {
                    return problem(.badRequest, "the body must be a JSON object: {\"dryRun\": bool, \"limit\": n}")
                }
                for (key, value) in fields {
                    switch key {
                    case "dryRun":
                        guard let flag = value.boolValue else { return problem(.badRequest, "dryRun: expected true or false") }
                        dryRun = flag
                    case "limit":
                        guard let number = value.intValue, number > 0 else { return problem(.badRequest, "limit: expected a positive integer") }
                        limit = Int(number)
                    default:
                        return problem(.badRequest, "unknown field '\(key)' (known: dryRun, limit)")
                    }
                }
            }
            do throws(RunRegistry.StartError) {
                let id = try deps.registry.start(pipeline: name, trigger: .api, dryRun: dryRun, limit: limit)
                return json(.accepted, .object(["id": .string(id), "pipeline": .string(name), "status": "running", "href": .string("/runs/\(id)")]))
            } catch .unknownPipeline {
                return problem(.notFound, "no pipeline named '\(name)'")
            } catch .alreadyRunning(let runID) {
                return json(.conflict, .object([
                    "error": .string("pipeline '\(name)' is already running"), "runId": .string(runID), "href": .string("/runs/\(runID)"),
                ]))
            } catch .runningElsewhere {
                return json(.conflict, .object(["error": .string("pipeline '\(name)' is running on another replica")]))
            } catch .coordinationFailed(let reason) {
                return problem(.serviceUnavailable, "cannot start '\(name)': \(reason)")
            } catch .shuttingDown {
                return problem(.serviceUnavailable, "the daemon is shutting down")
            }
        }

        router.get("runs") { request, _ -> Response in
            let pipeline = request.uri.queryParameters.get("pipeline")
            let limitText = request.uri.queryParameters.get("limit")
            let limit = limitText.flatMap { Int($0) } ?? 50
            if limitText != nil && (Int(limitText!) ?? 0) < 1 { return problem(.badRequest, "limit: expected a positive integer") }
            if let pipeline, deps.registry.pipelines[pipeline] == nil { return problem(.notFound, "no pipeline named '\(pipeline)'") }
            let runs = deps.registry.list(pipeline: pipeline, limit: limit)
            let trusted = deps.token.accepts(request.headers[.authorization])
            return json(.ok, .object(["runs": .array(trusted ? runs : runs.map(redacted))]))
        }

        router.get("runs/:id") { request, context -> Response in
            let id = try context.parameters.require("id")
            guard let run = deps.registry.json(id: id) else { return problem(.notFound, "no run with id '\(id)'") }
            return json(.ok, deps.token.accepts(request.headers[.authorization]) ? run : redacted(run))
        }

        router.post("runs/:id/cancel") { request, context -> Response in
            guard deps.token.isConfigured else { return problem(.unauthorized, "no API token is configured on this daemon: triggers are disabled") }
            guard deps.token.accepts(request.headers[.authorization]) else { return problem(.unauthorized, "missing or wrong bearer token") }
            let id = try context.parameters.require("id")
            switch deps.registry.cancel(id: id) {
            case nil: return problem(.notFound, "no run with id '\(id)'")
            case false?: return problem(.conflict, "run '\(id)' has already finished")
            case true?: return json(.accepted, .object(["id": .string(id), "status": "cancelling", "href": .string("/runs/\(id)")]))
            }
        }
        return router
    }
}
