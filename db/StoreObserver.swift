/// What a store's write transaction was about: a small fixed set, so that a metric labelled by it
/// stays small.
public enum StoreTransactionKind: String, Sendable, CaseIterable {
    /// An experiment created, started, edited, ended or deleted, or its start recorded or cleared.
    case experiment
    /// Trials created, started, given a decided end, or ended.
    case trial
    /// A batch of a trial's metric reports, with how far its log was read.
    case reports
    /// An event appended on its own.
    case event
}

/// Told how long the store's writes take, from asking for the writer to the commit of the transaction
/// holding them (which other writes may share). The closure is called once per write, on whatever task
/// ran it, after it committed or failed: it must be cheap and thread-safe.
public struct StoreObserver: Sendable {
    public var transaction: @Sendable (StoreTransactionKind, Duration) -> Void

    public init(transaction: @escaping @Sendable (StoreTransactionKind, Duration) -> Void) {
        self.transaction = transaction
    }

    /// Tells nobody.
    public static let none = StoreObserver { _, _ in }
}
