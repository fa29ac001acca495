import Foundation
import Hummingbird

/// An error as the OpenAI API reports it: an HTTP status and
/// `{"error": {"message", "type", "param", "code"}}`.
struct APIError: Error, Sendable, Equatable {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?

    /// 400: the request is malformed or asks for something this server cannot do.
    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func modelNotFound(_ name: String) -> APIError {
        APIError(
            status: .notFound, message: "The model '\(name)' does not exist.", type: "invalid_request_error",
            param: "model", code: "model_not_found")
    }

    static func notFound(_ path: String) -> APIError {
        APIError(
            status: .notFound, message: "Unknown endpoint \(path).", type: "invalid_request_error", param: nil,
            code: "unknown_url")
    }

    static func tooLarge(limit: Int) -> APIError {
        APIError(
            status: .contentTooLarge, message: "The request body is larger than \(limit) bytes (max_request_bytes).",
            type: "invalid_request_error", param: nil, code: "request_too_large")
    }

    /// 503: the queue is full or the server is shutting down; the client may retry later.
    static func unavailable(_ message: String, code: String) -> APIError {
        APIError(status: .serviceUnavailable, message: message, type: "server_error", param: nil, code: code)
    }

    static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", param: nil, code: nil)
    }

    var body: [String: Any] {
        [
            "error": [
                "message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull(),
            ]
        ]
    }

    var response: Response {
        JSONBody.response(body, status: status)
    }
}

/// JSON bodies written as JSONSerialization writes them, with sorted keys.
enum JSONBody {
    static func text(_ object: Any) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func response(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text(object))))
    }
}
