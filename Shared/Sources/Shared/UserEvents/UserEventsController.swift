import Foundation
import Hummingbird

/// `POST /internal/events`: auth's outbox delivers user events here (service credential,
/// from auth only). `204` once the event is applied and committed; any failure is an error
/// status, and auth delivers again (applying an event twice is applying it once).
public struct UserEventsController: Sendable {
    /// The only service that sends user events.
    public static let sender = "auth"
    let events: UserEvents
    let handler: any UserEventHandler

    public init(events: UserEvents, handler: any UserEventHandler) {
        self.events = events
        self.handler = handler
    }

    public var endpoints: RouteCollection<ServiceContext> {
        let routes = RouteCollection(context: ServiceContext.self)
        routes.post("events", use: receive)
        return routes
    }

    @Sendable func receive(request: Request, context: ServiceContext) async throws -> HTTPResponse.Status {
        try context.requireCaller(Self.sender)
        let event = try await request.decodeJSON(as: UserEvent.self, context: context)
        try await events.apply(event, handler: handler, logger: context.logger)
        context.logger.info(
            "user event applied",
            metadata: ["event": "\(event.type.rawValue)", "eventId": "\(event.id)", "userId": "\(event.userId)"])
        return .noContent
    }
}
