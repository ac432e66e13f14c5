import Foundation
import Store
import Synchronization
import Testing
@testable import KnobAlgorithms
@testable import Knob

/// The suggester state kept in an experiment's folder: written whole, read back, one folder per
/// experiment, and used by CMA-ES when a new process resumes.
@Suite struct SuggesterStateFolderTests {
    static let space = SearchSpace([
        Parameter(name: "x", kind: .double(min: -3, max: 3, step: nil, scale: .linear)),
        Parameter(name: "y", kind: .double(min: -3, max: 3, step: nil, scale: .linear)),
    ])

    static func leftovers(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasPrefix(".") }
    }

    @Test func whatIsWrittenReadsBackAndReplacesTheOldWhole() throws {
        let home = KnobHome(makeTemporaryDirectory())
        let folder = SuggesterStateFolder(path: home.stateDirectory(experiment: "e"))
        #expect(folder.read("cmaes.checkpoint") == nil, "nothing before the first write (nor the folder)")
        folder.write("cmaes.checkpoint", Array(repeating: 7, count: 100_000))
        #expect(folder.read("cmaes.checkpoint") == Array(repeating: 7, count: 100_000))
        for (path, expected) in [(home.path + "/state", 0o700), (folder.path, 0o700), (folder.path + "/cmaes.checkpoint", 0o600)] {
            let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int).map { $0 & 0o777 }
            #expect(mode == expected, "\(path) is private")
        }
        folder.write("cmaes.checkpoint", [1, 2, 3])
        #expect(folder.read("cmaes.checkpoint") == [1, 2, 3])
        folder.write("cmaes.checkpoint", [])
        #expect(folder.read("cmaes.checkpoint") == [])
        #expect(Self.leftovers(folder.path).isEmpty, "no temporary file stays behind")
        // Names cannot leave the folder or reach its temporary files.
        for name in ["../escape", "a/b", ".hidden", ""] {
            folder.write(name, [9])
            #expect(folder.read(name) == nil, "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: home.path + "/state/escape"))
        // The folder is the experiment's: removing the experiment's files removes it.
        home.removeFiles(ofExperiment: "e")
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }

    @Test func concurrentWritersLeaveOneWholeFileAndReadersNeverSeePartOfOne() throws {
        let folder = SuggesterStateFolder(path: makeTemporaryDirectory())
        // Writer w writes byte w, a length of its own, each time.
        let writers = 4, rounds = 40
        let lengths = (0..<writers).map { 30_000 + 7_919 * $0 }
        let partial = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: writers + 2) { worker in
            if worker < writers {
                for _ in 0..<rounds { folder.write("state", Array(repeating: UInt8(worker), count: lengths[worker])) }
            } else {
                for _ in 0..<(4 * rounds) {
                    guard let bytes = folder.read("state") else { continue }
                    let first = Int(bytes.first ?? 255)
                    if first >= writers || bytes.count != lengths[first] || bytes.contains(where: { $0 != bytes[0] }) {
                        partial.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        #expect(partial.load(ordering: .relaxed) == 0)
        let last = try #require(folder.read("state"))
        let writer = Int(try #require(last.first))
        #expect(writer < writers && last == Array(repeating: UInt8(writer), count: lengths[writer]))
        #expect(Self.leftovers(folder.path).isEmpty)
    }

    /// Runs `trials` trials one generation's worth at a time.
    static func drive(_ suggester: CMAESSuggester, trials: Int, _ f: (Assignment) -> Double) throws -> History {
        var history = History()
        while history.trials.count < trials {
            let next = try suggester.suggest(count: 2, history: history)
            history.trials += next.map { .init(assignment: $0.assignment, outcome: .completed(f($0.assignment)), metadata: $0.metadata) }
        }
        return history
    }

    @Test func experimentsSearchingAtOnceKeepTheirOwnCheckpoints() throws {
        let home = KnobHome(makeTemporaryDirectory())
        let names = ["sphere", "shifted", "same-seed"]
        let seeds: [UInt64] = [91_000, 91_001, 91_000]
        let functions: [@Sendable (Assignment) -> Double] = [
            { a in pow(a["x"]!.numericValue!, 2) + pow(a["y"]!.numericValue!, 2) },
            { a in pow(a["x"]!.numericValue! - 1, 2) + 3 * pow(a["y"]!.numericValue! + 1, 2) },
            { a in abs(a["x"]!.numericValue! + 2) + abs(a["y"]!.numericValue!) },
        ]
        let contexts = names.indices.map { k in
            SuggesterContext(space: Self.space, seed: seeds[k], stateStore: SuggesterStateFolder(path: home.stateDirectory(experiment: names[k])))
        }
        let histories = Mutex<[Int: History]>([:])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: names.count) { k in
            do {
                let history = try Self.drive(try CMAESSuggester(context: contexts[k]), trials: 120, functions[k])
                histories.withLock { $0[k] = history }
            } catch {
                failures.withLock { $0.append("\(names[k]): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        for k in names.indices {
            let history = try #require(histories.withLock { $0[k] })
            // A new process resumes from the experiment's own checkpoint and suggests what the
            // whole replay would.
            CMAESSuggester.clearReplayCheckpoints()
            let resumed = try CMAESSuggester(context: contexts[k])
            #expect(resumed.replay(history).resumed > 0, "\(names[k])")
            var bare = contexts[k]
            bare.stateStore = nil
            CMAESSuggester.clearReplayCheckpoints()
            let expected = try CMAESSuggester(context: bare).suggest(count: 3, history: history)
            CMAESSuggester.clearReplayCheckpoints()
            #expect(try resumed.suggest(count: 3, history: history) == expected, "\(names[k])")
            #expect(Self.leftovers(home.stateDirectory(experiment: names[k])).isEmpty)
        }
        // Same space and seed, other results: one's checkpoint does not serve the other.
        let sameSeed = try CMAESSuggester(context: contexts[2])
        let sphereBytes = try #require(SuggesterStateFolder(path: home.stateDirectory(experiment: "sphere")).read(CMAESSuggester.checkpointName))
        let sphereCheckpoint = try #require(sameSeed.decodeCheckpoint(sphereBytes), "written for the same configuration")
        #expect(!sameSeed.history(.init(try #require(histories.withLock { $0[2] })), startsWith: sphereCheckpoint))
    }

    @Test func theControllerKeepsCMAESStateInTheExperimentsFolder() async throws {
        let spec = try ExperimentSpec.parse("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: kept}
            spec:
              objective: {type: minimize, objectiveMetricName: loss}
              algorithm: {algorithmName: cmaes, algorithmSettings: [{name: random_state, value: "91100"}, {name: popsize, value: "3"}]}
              parallelTrialCount: 3
              maxTrialCount: 12
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                command: [/bin/sh, -c, 'echo loss=$1', sh, "${trialParameters.x}"]
            """)
        let home = KnobHome(makeTemporaryDirectory())
        let store = try home.openStore()
        let (experiment, _) = try await Engine.prepare(specText: "", spec: spec, specDirectory: home.path, home: home, store: store, replace: false)
        let controller = ExperimentController(store: store, home: home, spec: spec, runner: LocalRunner(), stop: StopSignal())
        let final = try await controller.run(experiment)
        #expect(final.status == .succeeded, "\(final.reason): \(final.message)")
        let folder = SuggesterStateFolder(path: home.stateDirectory(experiment: "kept"))
        let bytes = try #require(folder.read(CMAESSuggester.checkpointName), "the controller gave the suggester the experiment's folder")
        let suggester = try CMAESSuggester(context: SuggesterContext(
            space: spec.searchSpace, settings: spec.algorithm.settingsByName, seed: UInt64(bitPattern: experiment.seed), stateStore: folder))
        let checkpoint = try #require(suggester.decodeCheckpoint(bytes))
        let history = try await controller.history(experiment.id!, space: spec.searchSpace)
        #expect(checkpoint.generation > 0 && suggester.history(.init(history), startsWith: checkpoint))
        // Deleting the experiment's files takes the state with them.
        home.removeFiles(ofExperiment: "kept")
        #expect(folder.read(CMAESSuggester.checkpointName) == nil)
    }
}
