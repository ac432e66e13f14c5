import Foundation
import Testing

/// `knob collect`: knob's reading of event files and metrics files, as a sidecar runs it.
@Suite struct CollectCommandTests {
    /// Runs the tensorboardX trainer (TF1 simple values and TF2 scalar tensors) into `dir`/tb.
    static func writeEvents(in dir: String) async throws -> String {
        try write(tensorboardTrainer, to: "\(dir)/trainer.py")
        let python = try await runToEnd("/usr/bin/env", ["KNOB_TRIAL_DIR=\(dir)", "python3", "\(dir)/trainer.py", "--lr=0.03"])
        #expect(python.status == 0, "\(python.stderr)")
        return "\(dir)/tb"
    }

    @Test func eventFilesPrintTheirScalarsAsTheTrainerWroteThem() async throws {
        let dir = makeTemporaryDirectory()
        let events = try await Self.writeEvents(in: dir)
        let text = try await knob(["collect", "tfevents", events, "--metric", "accuracy", "--metric", "loss"])
        #expect(text.status == 0, "\(text.stderr)")
        // As the trainer rounds them (lr 0.03 takes nothing off), as float32 values.
        let accuracy: [String] = (1...4).map { (epoch: Int) -> String in "accuracy=\(Float(0.5 + Double(epoch) * 0.1))" }
        let loss: [String] = (1...4).map { (epoch: Int) -> String in "loss=\(1 / Float(epoch))" }
        var expected: [String] = []
        for (a, l) in zip(accuracy, loss) { expected += [a, l] }
        let printed: [String] = text.stdout.split(separator: "\n").map(String.init)
        #expect(printed == expected)

        let lines = try await knob(["collect", "tfevents", events, "-o", "json"]).stdout.split(separator: "\n")
        let objects = try lines.map { try #require(try json(String($0)) as? [String: Double]) }
        #expect(objects.count == 12)
        #expect(objects.filter { $0["other"] != nil }.map { $0["step"] } == [1, 2, 3, 4])
        let losses: [Float] = objects.compactMap { $0["loss"] }.map { Float($0) }
        #expect(losses == (1...4).map { (epoch: Int) -> Float in 1 / Float(epoch) })
    }

    @Test func aRecordThatFailsItsCRCIsSkippedAndSaid() async throws {
        let dir = makeTemporaryDirectory()
        let events = try await Self.writeEvents(in: dir)
        let file = try #require(FileManager.default.subpathsOfDirectory(atPath: events).first { $0.contains("tfevents") })
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(events)/\(file)")))
        // The records: the file-version event, then per epoch accuracy, loss and other. Damage the data of the
        // first epoch's loss (the third record).
        var start = 0
        for _ in 0..<2 { start += 12 + bytes[start..<(start + 8)].reversed().reduce(0) { $0 << 8 | Int($1) } + 4 }
        bytes[start + 12 + 3] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: "\(events)/\(file)"))

        let result = try await knob(["collect", "tfevents", events, "--metric", "loss"])
        #expect(result.status == 0)
        #expect(result.stdout.split(separator: "\n") == ["loss=0.5", "loss=0.33333334", "loss=0.25"])
        #expect(result.stderr.contains("1 record(s) failed their CRC and were skipped"), "\(result.stderr)")
    }

    @Test func aMetricsFileIsReadWithKatibsFiltersAndFormats() async throws {
        let dir = makeTemporaryDirectory()
        try write("Epoch 1. accuracy=0.91 - loss=0.3\n{metricName: accuracy, metricValue: 0.93}\nEpoch 3. accuracy=0.95", to: "\(dir)/m.txt")
        let text = try await knob(["collect", "file", "\(dir)/m.txt", "--metric", "accuracy", "--metric", "loss"])
        #expect(text.stdout == "accuracy=0.91\nloss=0.3\naccuracy=0.95\n", "\(text.stderr)")
        let filtered = try await knob(["collect", "file", "\(dir)/m.txt", "--metric", "accuracy",
                                       "--filter", #"{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}"#])
        #expect(filtered.stdout == "accuracy=0.93\n", "\(filtered.stderr)")
        try write(#"{"accuracy": 0.8, "epoch": 1}"# + "\n" + #"{"accuracy": "0.9", "epoch": 2}"# + "\n", to: "\(dir)/m.json")
        let lines = try await knob(["collect", "file", "\(dir)/m.json", "--format", "json", "--metric", "accuracy", "-o", "json"])
        #expect(lines.stdout == "{\"accuracy\": 0.8, \"step\": 1}\n{\"accuracy\": 0.9, \"step\": 2}\n", "\(lines.stderr)")
    }

    /// A sidecar is stopped (SIGTERM) once the trial's container has ended: what was written before the stop is
    /// printed, the last line too without its newline, however long the pause between reads.
    @Test func aStopReadsWhatWasWrittenBeforeIt() async throws {
        let dir = makeTemporaryDirectory()
        let script = """
            "$0" collect file "$1/m.txt" --metric loss --follow --interval 30 > "$1/out" 2> "$1/err" & pid=$!
            printf 'loss=1\n' > "$1/m.txt"
            until grep -q loss=1 "$1/out"; do sleep 0.05; done
            printf 'loss=2\nloss=3' >> "$1/m.txt"
            kill -TERM $pid; wait $pid; echo "status $?"
            "$0" collect file "$1/never.txt" --metric loss --follow --interval 30 2> "$1/never" & pid=$!
            # Stopped once it catches SIGTERM (bit 15 of the caught signals).
            until [ $(( 0x$(awk '/^SigCgt/ {print $2}' /proc/$pid/status) & 0x4000 )) -ne 0 ]; do sleep 0.05; done
            while kill -TERM $pid 2>/dev/null; do sleep 0.2; done; wait $pid
            """
        let result = try await runToEnd("/bin/sh", ["-c", script, knobExecutable, dir])
        #expect(result.stdout == "status 0\n", "\(result.stderr)")
        #expect(try String(contentsOfFile: "\(dir)/out", encoding: .utf8) == "loss=1.0\nloss=2.0\nloss=3.0\n")
        #expect(try String(contentsOfFile: "\(dir)/never", encoding: .utf8) == "knob collect: \(dir)/never.txt was never created\n")
    }

    @Test func whatCannotBeReadIsNamed() async throws {
        let missing = try await knob(["collect", "file", "/nonexistent/m.txt", "--metric", "a"])
        #expect(missing.status == 2 && missing.stderr.contains("/nonexistent/m.txt: no such file"))
        let folder = try await knob(["collect", "tfevents", "/nonexistent/tb"])
        #expect(folder.status == 2 && folder.stderr.contains("/nonexistent/tb: no such folder"))
        let filter = try await knob(["collect", "file", "/etc/hostname", "--metric", "a", "--filter", "(a"])
        #expect(filter.status == 2 && filter.stderr.contains("not a valid regular expression"), "\(filter.stderr)")
        let noMetric = try await knob(["collect", "file", "/etc/hostname"])
        #expect(noMetric.status != 0 && noMetric.stderr.contains("--metric"))
    }
}
