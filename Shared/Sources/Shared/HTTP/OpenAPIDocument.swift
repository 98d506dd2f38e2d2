import Foundation

/// A service's OpenAPI document, served at `/openapi.yaml`; the tests check it against the routes.
public enum OpenAPIDocument {
    /// The `openapi.yaml` resource of a service's bundle (`Bundle.module` there).
    public static func load(from bundle: Bundle) -> String? {
        bundle.url(forResource: "openapi", withExtension: "yaml").flatMap { try? String(contentsOf: $0, encoding: .utf8) }
    }
}
