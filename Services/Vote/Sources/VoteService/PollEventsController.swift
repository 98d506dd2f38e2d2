import Foundation
import HTTPTypes
import Hummingbird
import ServiceLifecycle
import Shared

/// `GET /polls/{pollId}/events`: live counts as Server-Sent Events.
///
/// The stream opens with the current counts, then sends an `event: counts` whenever
/// they change (coalesced by the hub) and a `: keepalive` comment when idle. It ends
/// when the client goes away, the poll is deleted or the instance shuts down.
struct PollEventsController: Sendable {
    let repository: any VoteRepository
    let hub: PollEventHub
    let settings: PollEventsSettings

    var endpoints: RouteCollection<OptionalAuthContext> {
        let routes = RouteCollection(context: OptionalAuthContext.self)
        routes.get(":pollId/events", use: events)
        return routes
    }

    @Sendable func events(request: Request, context: OptionalAuthContext) async throws -> Response {
        let pollID = try context.parameters.id("pollId", orNotFound: PollsController.pollNotFound)
        // Subscribe before reading, so no change falls between the snapshot and the stream.
        let subscription = await hub.subscribe(pollID: pollID)
        do {
            guard let counts = try await repository.counts(pollIDs: [pollID], logger: context.logger)[pollID] else {
                throw PollsController.pollNotFound
            }
            await hub.offerFirst(counts, to: subscription)
        } catch {
            await hub.unsubscribe(subscription)
            throw error
        }

        let hub = self.hub
        let heartbeat = settings.heartbeatInterval
        let logger = context.logger
        let body = ResponseBody { writer in
            do {
                // Ends the stream (and so the handler) as soon as the client disconnects.
                try await request.body.consumeWithCancellationOnInboundClose { _ in
                    try await withGracefulShutdownHandler {
                        try await withThrowingDiscardingTaskGroup { group in
                            group.addTask {
                                while !Task.isCancelled {
                                    try? await Task.sleep(for: heartbeat)
                                    subscription.wake()
                                }
                            }
                            for await _ in subscription.signals {
                                if let counts = subscription.take() {
                                    try await writer.write(try ServerSentEvent.counts(counts))
                                } else {
                                    try await writer.write(ServerSentEvent.keepalive)
                                }
                            }
                            group.cancelAll()
                        }
                    } onGracefulShutdown: {
                        subscription.finish()
                    }
                }
            } catch {
                // The client went away (a write failed or the inbound side closed).
                logger.debug("event stream ended", metadata: ["pollId": "\(pollID)", "reason": "\(error)"])
            }
            await hub.unsubscribe(subscription)
            try? await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8",
                .cacheControl: "no-cache",
                // Proxies (nginx) must pass events on as they come.
                ServerSentEvent.accelBuffering: "no",
            ],
            body: body)
    }
}

/// The wire format of the stream (https://html.spec.whatwg.org/multipage/server-sent-events.html).
enum ServerSentEvent {
    static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!
    static let keepalive = ByteBuffer(string: ": keepalive\n\n")

    static func counts(_ counts: PollCounts) throws -> ByteBuffer {
        let json = try APIJSONEncoder().encode(counts)
        var buffer = ByteBuffer(string: "event: counts\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }
}
