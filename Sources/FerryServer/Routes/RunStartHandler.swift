import FerryPluginKit
import Hummingbird

/// POST /pipelines/{name}/runs: starts a run now, with an optional
/// `{"dryRun": bool, "limit": n}` body. The token is checked before this runs.
struct RunStartHandler: APIHandler {
    let registry: RunRegistry
    let maxBodyBytes: Int

    init(_ deps: APIRoutes.Dependencies) {
        registry = deps.registry
        maxBodyBytes = deps.config.connectionLimits.maxBodyBytes
    }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let body = try await request.body.collect(upTo: maxBodyBytes)
        var dryRun = false
        var limit: Int?
        if body.readableBytes > 0 {
            guard case .object(let fields)? = try? JSONValue.parse(String(buffer: body)) else {
                return APIRoutes.problem(.badRequest, "the body must be a JSON object: {\"dryRun\": bool, \"limit\": n}")
            }
            for (key, value) in fields {
                switch key {
                case "dryRun":
                    guard let flag = value.boolValue else { return APIRoutes.problem(.badRequest, "dryRun: expected true or false") }
                    dryRun = flag
                case "limit":
                    guard let number = value.intValue, number > 0 else { return APIRoutes.problem(.badRequest, "limit: expected a positive integer") }
                    limit = Int(number)
                default:
                    return APIRoutes.problem(.badRequest, "unknown field '\(key)' (known: dryRun, limit)")
                }
            }
        }
        do throws(RunRegistry.StartError) {
            let id = try registry.start(pipeline: name, trigger: .api, dryRun: dryRun, limit: limit)
            return APIRoutes.json(.accepted, .object(["id": .string(id), "pipeline": .string(name), "status": "running", "href": .string("/runs/\(id)")]))
        } catch .unknownPipeline {
            return APIRoutes.problem(.notFound, "no pipeline named '\(name)'")
        } catch .alreadyRunning(let runID) {
            return APIRoutes.json(.conflict, .object([
                "error": .string("pipeline '\(name)' is already running"), "runId": .string(runID), "href": .string("/runs/\(runID)"),
            ]))
        } catch .runningElsewhere {
            return APIRoutes.json(.conflict, .object(["error": .string("pipeline '\(name)' is running on another replica")]))
        } catch .coordinationFailed(let reason) {
            return APIRoutes.problem(.serviceUnavailable, "cannot start '\(name)': \(reason)")
        } catch .shuttingDown {
            return APIRoutes.problem(.serviceUnavailable, "the daemon is shutting down")
        }
    }
}
