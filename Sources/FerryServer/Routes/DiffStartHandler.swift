import FerryCore
import FerryPluginKit
import Hummingbird

/// POST /pipelines/{name}/diff: starts a comparison of the pipeline's source
/// with its target, as a run record of kind `diff`, with an optional
/// `{"method": "auto|digest|read", "sample": n}` body or the same as query
/// parameters. It never repairs: that stays `ferry repair`, run by a person.
/// The token is checked before this runs.
struct DiffStartHandler: APIHandler {
    let registry: RunRegistry
    let maxBodyBytes: Int

    /// More would put that many records of each kind in one run record.
    static let maxSample = 1000

    init(_ deps: APIRoutes.Dependencies) {
        registry = deps.registry
        maxBodyBytes = deps.config.connectionLimits.maxBodyBytes
    }

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let body = try await request.body.collect(upTo: maxBodyBytes)
        var fields: [(String, JSONValue)] = []
        for key in ["method", "sample"] {
            guard let text = request.uri.queryParameters.get(key) else { continue }
            fields.append((key, key == "sample" ? Int64(text).map(JSONValue.integer) ?? .string(text) : .string(text)))
        }
        if body.readableBytes > 0 {
            guard case .object(let object)? = try? JSONValue.parse(String(buffer: body)) else {
                return APIRoutes.problem(.badRequest, "the body must be a JSON object: {\"method\": \"auto|digest|read\", \"sample\": n}")
            }
            fields += object.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        var diff = DiffRequest()
        for (key, value) in fields {
            switch key {
            case "method":
                guard let method = value.stringValue.flatMap(DiffOptions.Method.init(rawValue:)) else {
                    return APIRoutes.problem(.badRequest, "method: expected auto, digest or read")
                }
                diff.method = method
            case "sample":
                guard let count = value.intValue, (0...Int64(Self.maxSample)).contains(count) else {
                    return APIRoutes.problem(.badRequest, "sample: expected an integer from 0 to \(Self.maxSample)")
                }
                diff.sample = Int(count)
            default:
                return APIRoutes.problem(.badRequest, "unknown field '\(key)' (known: method, sample)")
            }
        }
        do throws(RunRegistry.StartError) {
            let id = try registry.startDiff(pipeline: name, request: diff)
            return APIRoutes.json(.accepted, .object([
                "id": .string(id), "kind": "diff", "pipeline": .string(name), "status": "running", "href": .string("/runs/\(id)"),
            ]))
        } catch .unknownPipeline {
            return APIRoutes.problem(.notFound, "no pipeline named '\(name)'")
        } catch .alreadyRunning(let runID) {
            return APIRoutes.json(.conflict, .object([
                "error": .string("pipeline '\(name)' is already running or being compared"), "runId": .string(runID),
                "href": .string("/runs/\(runID)"),
            ]))
        } catch .shuttingDown {
            return APIRoutes.problem(.serviceUnavailable, "the daemon is shutting down")
        } catch .runningElsewhere, .coordinationFailed {
            return APIRoutes.problem(.serviceUnavailable, "cannot start a diff of '\(name)'")
        }
    }
}
