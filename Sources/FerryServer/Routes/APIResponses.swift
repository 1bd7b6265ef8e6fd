import FerryPluginKit
import Hummingbird

/// The answers every route builds: a JSON body, or a JSON error.
extension APIRoutes {
    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: value.jsonText + "\n")))
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, .object(["error": .string(message)]))
    }
}
