// knob-bench reports FILE --metrics a,b [--runs 3]: a trial's log read as knob reads it, with the two halves
// timed apart: the scraper alone (lines cut from 256 KB reads, each line's reports parsed, the observation
// kept, the rows made) and the store alone (those rows appended per read chunk with the log offset and the
// observation, one transaction each, into a new store file). Prints "reports<TAB>scan seconds<TAB>store
// seconds<TAB>bytes", the median of the runs, for bench/system.sh.

import Foundation
import Knob
import Store

enum ReportsBench {
    static func run(_ arguments: [String]) async {
        var rest = arguments[...]
        guard let path = rest.popFirst() else { fail("usage: knob-bench reports FILE --metrics a,b [--runs 3]") }
        var metrics: [String] = []
        var runs = 3
        while let argument = rest.popFirst() {
            switch argument {
            case "--metrics": metrics = (rest.popFirst() ?? "").split(separator: ",").map(String.init)
            case "--runs": runs = rest.popFirst().flatMap(Int.init) ?? runs
            default: fail("unknown argument \(argument)")
            }
        }
        guard !metrics.isEmpty, let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path), or no --metrics") }
        let bytes = [UInt8](data)
        let scraper: MetricsScraper
        do { scraper = try MetricsScraper(metricNames: metrics, collector: .stdOut) } catch { fail("\(error)") }

        var scans: [Double] = [], stores: [Double] = []
        var count = 0
        for _ in 0..<runs {
            // The scraper's half: what TrialExecution does with each read before it calls the store.
            let started = ContinuousClock.now
            var lines = LineReader()
            var observation = ObservationBuilder(metricNames: metrics)
            var batches: [(records: [MetricRecord], offset: Int64, observation: [MetricSummary])] = []
            var at = 0
            let now = Date()
            while at < bytes.count {
                let end = min(bytes.count, at + (1 << 18))
                var records: [MetricRecord] = []
                for line in lines.feed(bytes[at..<end]) {
                    for report in scraper.reports(in: line) {
                        let step = observation.add(report)
                        records.append(MetricRecord(trialId: 1, name: report.name, value: report.value, text: report.text, step: step,
                                                    timestamp: report.timestamp ?? now))
                    }
                }
                if !records.isEmpty { batches.append((records, lines.consumed, observation.metrics)) }
                at = end
            }
            scans.append(seconds(ContinuousClock.now - started))
            count = batches.reduce(0) { $0 + $1.records.count }

            // The store's half, into a store of its own.
            let folder = NSTemporaryDirectory() + "knob-bench-reports-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: folder) }
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let store = try Store(path: folder + "/knob.db")
                let experiment = try await store.createExperiment(ExperimentRecord(
                    name: "reports", specText: "", specJSON: "{}", seed: 1, objectiveType: "minimize", objectiveMetricName: metrics[0],
                    directory: folder))
                let trial = try await store.createTrials([NewTrial(assignments: [])], for: experiment)[0]
                let stored = ContinuousClock.now
                for batch in batches {
                    let records = batch.records.map { record in
                        var record = record
                        record.trialId = trial.id!
                        return record
                    }
                    try await store.appendReports(trial.id!, reports: records, logOffset: batch.offset, observation: batch.observation)
                }
                stores.append(seconds(ContinuousClock.now - stored))
            } catch {
                fail("the store: \(error)")
            }
        }
        print("\(count)\t\(median(scans))\t\(median(stores))\t\(bytes.count)")
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("knob-bench reports: \(message)\n".utf8))
        exit(2)
    }
}
