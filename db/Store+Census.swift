import Foundation
import GRDB

/// The whole store in a few numbers: what `/metrics` reads at each scrape.
public struct StoreCensus: Sendable, Hashable {
    /// Experiments by status; a status no experiment has is absent.
    public var experiments: [ExperimentStatus: Int]
    /// Trials by state; a state no trial has is absent.
    public var trials: [TrialState: Int]
    /// The wall time of the finished trials that started, from start to end.
    public var durations: Buckets
    /// Numeric metric reports kept in the trials' observations.
    public var reports: Int

    /// A histogram's content: for each upper bound, how many values are at most it; with the count
    /// and the sum of all values.
    public struct Buckets: Sendable, Hashable {
        public var bounds: [Double]
        /// Cumulative: `cumulativeCounts[i]` values are ≤ `bounds[i]`.
        public var cumulativeCounts: [Int]
        public var count: Int
        public var sum: Double
    }
}

extension Store {
    /// Counts experiments by status and trials by state, and buckets the finished trials' durations by
    /// `durationBounds` (seconds, ascending), in SQL: no trial is decoded, so the cost grows with
    /// the number of rows SQLite scans, not with the JSON each trial carries.
    public func census(durationBounds: [Double]) async throws -> StoreCensus {
        precondition(zip(durationBounds, durationBounds.dropFirst()).allSatisfy { $0 < $1 }, "duration bounds must ascend")
        return try await writer.read { db in
            var experiments: [ExperimentStatus: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) FROM experiment GROUP BY status") {
                if let status = ExperimentStatus(rawValue: row[0]) { experiments[status] = row[1] }
            }
            var trials: [TrialState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) FROM trial GROUP BY state") {
                if let state = TrialState(rawValue: row[0]) { trials[state] = row[1] }
            }
            // Times are stored as UTC text to the millisecond; julianday reads them. The durations are
            // materialized once: a subquery SQLite flattens would parse both times again for each bucket.
            let buckets = durationBounds.map { _ in "COALESCE(SUM(d <= ?), 0)" }.joined(separator: ", ")
            let unfinished = [TrialState.pending, .running].map { "'\($0.rawValue)'" }.joined(separator: ", ")
            let row = try Row.fetchOne(db, sql: """
                WITH durations AS MATERIALIZED (
                    SELECT MAX(0, (julianday(completedAt) - julianday(startedAt)) * 86400.0) AS d FROM trial
                    WHERE state NOT IN (\(unfinished)) AND startedAt IS NOT NULL AND completedAt IS NOT NULL)
                SELECT COUNT(*), COALESCE(SUM(d), 0)\(buckets.isEmpty ? "" : ", " + buckets) FROM durations
                """, arguments: StatementArguments(durationBounds))!
            let durations = StoreCensus.Buckets(bounds: durationBounds, cumulativeCounts: durationBounds.indices.map { row[$0 + 2] },
                                                count: row[0], sum: row[1])
            let reports = try Int.fetchOne(db, sql: """
                SELECT COALESCE(SUM(json_extract(summary.value, '$.count')), 0) FROM trial, json_each(trial.observation) AS summary
                """) ?? 0
            return StoreCensus(experiments: experiments, trials: trials, durations: durations, reports: reports)
        }
    }
}
