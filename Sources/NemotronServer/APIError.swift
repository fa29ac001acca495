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

    var body: JSONValue {
        [
            "error": [
                "message": .string(message), "type": .string(type), "param": JSONValue(param), "code": JSONValue(code),
            ]
        ]
    }

    var response: Response {
        JSONBody.response(body, status: status)
    }
}

/// A JSON response body.
enum JSONBody {
    static func response(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: value.text)))
    }
}
