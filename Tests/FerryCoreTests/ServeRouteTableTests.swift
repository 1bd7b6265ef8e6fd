import FerryCore
import FerryPluginKit
import FerryServer
import Foundation
import Testing

/// `APIRoutes.table` against docs/openapi.yaml and against a running daemon,
/// row by row: a route added to the table is documented, served and guarded,
/// or one of these says which it is not.
@Suite("ferry serve route table")
struct ServeRouteTableTests {
    static let daemon = """
        listen: 127.0.0.1:{{port}}
        pipelines:
          - file: copy.yaml
        state_dir: {{dir}}/state
        """

    static let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

    func start(withToken: Bool = true) throws -> ServeProcess {
        let serve = try ServeProcess(daemonYAML: Self.daemon, files: ["copy.yaml": ServeTests.copyPipeline], withToken: withToken)
        try serve.waitUntilUp()
        return serve
    }

    /// The route's path with each `{parameter}` filled with a name nothing has,
    /// so a call reaches the handler and starts or cancels nothing.
    static func concrete(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("{") && $0.hasSuffix("}") ? "no-such-\($0.dropFirst().dropLast())" : String($0) }
            .joined(separator: "/")
    }

    /// The router's own answer to a path or method it does not serve: 404 with no body.
    /// A handler's 404 (no such pipeline, no such run) always has a JSON error.
    static func unrouted(_ answer: RawHTTP.Answer) -> Bool { answer.status == 404 && answer.body.isEmpty }

    /// Every operation in docs/openapi.yaml as "METHOD /path", and whether it
    /// needs the bearer token (its own `security`, else the document's).
    static func documented() throws -> [String: Bool] {
        let text = try String(contentsOf: TestSupport.repoRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        guard case .mapping(let root, _)? = try ConfigNode.parse(yaml: text, file: "openapi.yaml"),
            case .mapping(let paths, _)? = root.first(where: { $0.key == "paths" })?.value
        else { throw TestFailure("docs/openapi.yaml has no paths") }
        func needsBearer(_ security: ConfigNode?) -> Bool? {
            guard case .sequence(let requirements, _)? = security else { return nil }
            return requirements.contains { requirement in
                if case .mapping(let schemes, _) = requirement { return schemes.contains { $0.key == "bearer" } }
                return false
            }
        }
        let byDefault = needsBearer(root.first { $0.key == "security" }?.value) ?? false
        var operations: [String: Bool] = [:]
        for (path, _, item) in paths {
            guard case .mapping(let entries, _) = item else { continue }
            for (method, _, operation) in entries where methods.contains(method.uppercased()) {
                guard case .mapping(let fields, _) = operation else { continue }
                operations["\(method.uppercased()) \(path)"] = needsBearer(fields.first { $0.key == "security" }?.value) ?? byDefault
            }
        }
        return operations
    }

    @Test("every route in the table is in docs/openapi.yaml with its method, path and token requirement, and nothing more is")
    func tableMatchesOpenAPI() throws {
        let documented = try Self.documented()
        let table = Dictionary(uniqueKeysWithValues: APIRoutes.table.map { ("\($0.method) \($0.path)", $0.access == .token) })
        #expect(Set(table.keys).subtracting(documented.keys).isEmpty, "served, not in docs/openapi.yaml: \(Set(table.keys).subtracting(documented.keys).sorted())")
        #expect(Set(documented.keys).subtracting(table.keys).isEmpty, "in docs/openapi.yaml, not served: \(Set(documented.keys).subtracting(table.keys).sorted())")
        for (operation, needsToken) in table.sorted(by: { $0.key < $1.key }) {
            guard let documentedNeed = documented[operation] else { continue }
            #expect(
                documentedNeed == needsToken,
                "\(operation): the table says \(needsToken ? "token" : "open"), docs/openapi.yaml says \(documentedNeed ? "security: [{bearer: []}]" : "no security")")
        }
    }

    @Test("every route in the table reaches its handler over a socket, and no other method on its path is served")
    func tableIsServed() throws {
        let serve = try start()
        defer { serve.stop() }
        let auth = ["Authorization": "Bearer \(serve.token)"]
        var servedMethods: [String: Set<String>] = [:]
        for route in APIRoutes.table {
            servedMethods[route.path, default: []].insert(route.method)
            let path = Self.concrete(route.path)
            let answer = try RawHTTP.request(port: serve.port, route.method, path, headers: auth, timeout: 20)
            #expect(!Self.unrouted(answer), "\(route.method) \(path): the router does not know it (\(answer.head))")
            #expect(answer.status != 401, "\(route.method) \(path) with the token: \(answer.status) \(answer.body)")
        }
        for (path, served) in servedMethods {
            for method in Self.methods where !served.contains(method) {
                let answer = try RawHTTP.request(port: serve.port, method, Self.concrete(path), headers: auth, timeout: 20)
                #expect(Self.unrouted(answer), "\(method) \(path) is served but not in the table: \(answer.head)")
            }
        }
    }

    @Test("every token route answers 401 without the token or with a wrong one, and not with the right one; open routes never 401")
    func tokenRoutesAreGuarded() throws {
        let serve = try start()
        defer { serve.stop() }
        let refusals: [(String, [String: String])] = [
            ("no Authorization", [:]),
            ("a wrong token", ["Authorization": "Bearer wrong"]),
            ("the token less its last character", ["Authorization": "Bearer \(serve.token.dropLast())"]),
            ("the token with a character more", ["Authorization": "Bearer \(serve.token)x"]),
            ("the token under another scheme", ["Authorization": "Basic \(serve.token)"]),
        ]
        #expect(APIRoutes.table.contains { $0.access == .token })
        for route in APIRoutes.table {
            let path = Self.concrete(route.path)
            for (what, headers) in refusals {
                let answer = try RawHTTP.request(port: serve.port, route.method, path, headers: headers, timeout: 20)
                if route.access == .token {
                    #expect(answer.status == 401, "\(route.method) \(path) with \(what): \(answer.status) \(answer.body)")
                    #expect(try JSONValue.parse(answer.body)["error"] == "missing or wrong bearer token", "\(route.method) \(path): \(answer.body)")
                } else {
                    #expect(answer.status != 401, "open route \(route.method) \(path) with \(what): 401")
                }
            }
            let trusted = try RawHTTP.request(port: serve.port, route.method, path, headers: ["Authorization": "Bearer \(serve.token)"], timeout: 20)
            #expect(trusted.status != 401, "\(route.method) \(path) with the token: \(trusted.status) \(trusted.body)")
        }
    }

    @Test("a daemon without a token refuses every token route with 401 and still serves every open route")
    func noTokenConfigured() throws {
        let serve = try start(withToken: false)
        defer { serve.stop() }
        for route in APIRoutes.table {
            let path = Self.concrete(route.path)
            let answer = try RawHTTP.request(port: serve.port, route.method, path, headers: ["Authorization": "Bearer anything"], timeout: 20)
            if route.access == .token {
                #expect(answer.status == 401, "\(route.method) \(path): \(answer.status) \(answer.body)")
                #expect(answer.body.contains("no API token is configured"), "\(route.method) \(path): \(answer.body)")
            } else {
                #expect(answer.status != 401 && !Self.unrouted(answer), "open route \(route.method) \(path): \(answer.head)")
            }
        }
    }
}
