import ArgumentParser
import CommandSupport
import Dispatch
import Foundation
import Knob
import KnobServer
import Kubernetes
import Store

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment in this process until it ends, showing each trial as it finishes.",
        discussion: """
            Progress goes to standard output (standard error with -o json or yaml), a line per trial; in a terminal, a status \
            line under them shows trials done, time so far and left, the best so far and the running trials' latest values. \
            At the end the best trial is printed \
            (with -o json or yaml: Katib's currentOptimalTrial, as knob best prints it).
            If the experiment exists and has not ended (or was stopped), it continues where it was.
            Ctrl-C stops it: running trials are killed and the state is recorded; a second Ctrl-C exits at once.
            Exit code: 0 when the experiment succeeds, 1 when it fails or on an error, 130 when stopped.
            """
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The Experiment spec (YAML or JSON); - reads standard input.", valueName: "spec"), completion: .file())
    var file: String

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup(title: "Kubernetes (when the trialTemplate has a trialSpec and no command)") var kubernetes: KubernetesArguments

    @Flag(help: "Discard an existing experiment of the same name (its trials, metrics and logs) and start again.")
    var replace = false

    func run() async throws {
        let structured = outputOptions.output != .table
        let plain: @Sendable (String) -> Void = { line in
            if structured { printError(line) } else { print(line) }
        }
        let home = homeOptions.knobHome
        let stop = StopSignal()
        try await reportingErrors {
            let (text, spec) = try Engine.loadSpec(at: file)
            let specDirectory = file == "-" ? FileManager.default.currentDirectoryPath
                : (KnobHome.absolute(file) as NSString).deletingLastPathComponent
            // Local trials of a Push experiment send their reports to this process, on a socket in the
            // experiment's folder; pods could not reach it, so a Kubernetes one is refused before it is recorded.
            let pushSocket = spec.metricsCollector.kind == .push ? "\(home.path)/trials/\(spec.name)/push.sock" : nil
            let push = PushEndpoints(local: pushSocket.map { "unix://\($0)" })
            try push.check(spec)
            let store = try home.openStore()
            let lock = try FileLock.experiment(spec.name, home: home)
            defer { lock.release() }
            let (experiment, resumed) = try await Engine.prepare(
                specText: text, spec: spec, specDirectory: specDirectory, home: home, store: store, replace: replace)
            // On a terminal, a status line stays under the trials' lines until the experiment ends.
            let printer = ProgressPrinter(spec: spec, terminal: Terminal(descriptor: structured ? 2 : 1), print: plain)
            defer { printer.finish() }
            let progress: @Sendable (String) -> Void = { printer.log($0) }
            progress(header(spec, resumed: resumed, home: home))

            let signals = installStopHandlers(stop, progress: progress)
            defer { signals.forEach { $0.cancel() } }
            let runners = trialRunners(supervisor: currentExecutablePath(), kubernetes: kubernetes)
            var controller = ExperimentController(store: store, home: home, spec: spec, runner: runners.runner(for: spec), stop: stop,
                                                  onEvent: { printer.handle($0) })
            controller.pushURL = push.url(for: spec)
            // The status line follows the trials until the experiment ends.
            let final = try await withThrowingTaskGroup(of: ExperimentRecord?.self) { [controller] group in
                group.addTask { await printer.follow(store, experiment: experiment); return nil }
                if let pushSocket {
                    try FileManager.default.createDirectory(atPath: (pushSocket as NSString).deletingLastPathComponent,
                                                            withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    let (ready, signalReady) = AsyncStream<Void>.makeStream()
                    group.addTask {
                        defer { signalReady.finish() }
                        try await servePushReports(store: store, home: home, socketPath: pushSocket) { signalReady.yield() }
                        return nil
                    }
                    // Trials start once their reports have somewhere to go (or the server's failure is thrown below).
                    for await _ in ready { break }
                }
                group.addTask { try await controller.run(experiment) }
                while let result = try await group.next() {
                    guard let final = result else { continue }
                    group.cancelAll()
                    return final
                }
                throw CancellationError()
            }
            printer.finish()
            let best = try await store.optimalTrial(of: final)
            progress("")
            progress("experiment \(final.name) \(final.status.rawValue.lowercased()) (\(final.reason)): \(final.message)")
            if structured {
                _ = try outputOptions.printData(OptimalTrial(best))
            } else if let best {
                print("best trial \(best.name): \(spec.objective.objectiveMetricName)=\(best.objectiveValue.map(formatValue) ?? "-")")
                for assignment in best.assignments { print("  \(assignment.name) = \(assignment.value)") }
                print("again later: knob best \(final.name)\(homeOptions.home.map { " --home \($0)" } ?? "")")
            } else {
                print("no trial reported \(spec.objective.objectiveMetricName); see `knob trials \(final.name)` for why")
            }
            switch final.status {
            case .succeeded: return
            case .stopped: throw ExitCode(130)
            default: throw ExitCode(1)
            }
        }
    }

    private func header(_ spec: ExperimentSpec, resumed: Bool, home: KnobHome) -> String {
        let budget = spec.maxTrialCount.map { "\($0) trials" } ?? "no trial limit"
        let goal = spec.objective.goal.map { ", goal \(formatValue($0))" } ?? ""
        return """
            \(resumed ? "resuming" : "running") experiment \(spec.name): \(spec.algorithm.algorithmName), \(budget), \
            \(spec.parallelTrialCount) in parallel; \(spec.objective.type.rawValue) \(spec.objective.objectiveMetricName)\(goal)
            store: \(home.databasePath)
            """
    }

    /// Ctrl-C (and SIGTERM) ask the experiment to stop; a second one exits at once.
    private func installStopHandlers(_ stop: StopSignal, progress: @escaping @Sendable (String) -> Void) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
            source.setEventHandler {
                if stop.isRequested {
                    printError("interrupted again: exiting now; trials still running may be left behind")
                    Foundation.exit(130)
                }
                progress("\(signalName(signalNumber)): stopping the experiment (killing running trials); press Ctrl-C again to exit at once")
                stop.request("stopped by \(signalName(signalNumber))")
            }
            source.resume()
            return source
        }
    }
}
