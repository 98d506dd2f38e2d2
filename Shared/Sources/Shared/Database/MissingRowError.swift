/// `INSERT … RETURNING` (or an `UPDATE … RETURNING` of a row the transaction just locked)
/// came back empty, which PostgreSQL does not do: a bug if ever seen, answered as `500`.
public struct MissingRowError: Error {
    public init() {}
}
