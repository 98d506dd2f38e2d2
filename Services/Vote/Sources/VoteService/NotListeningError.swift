/// The LISTEN connection is down: live counts may be late until it is back.
struct NotListeningError: Error {}
