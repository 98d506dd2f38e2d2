import PostgresNIO

extension AsyncSequence {
    /// Reads every element (so the connection is released) and returns them.
    public func collect() async throws -> [Element] {
        var elements: [Element] = []
        for try await element in self { elements.append(element) }
        return elements
    }

    /// Reads every element and returns how many there were (affected rows of `… RETURNING`).
    public func count() async throws -> Int {
        var count = 0
        for try await _ in self { count += 1 }
        return count
    }
}

extension PostgresRowSequence {
    /// Drains the rows of a statement whose result is not needed.
    public func consume() async throws {
        for try await _ in self {}
    }
}
