import ArgumentParser
import Foundation
import Knob

/// A root command whose executable also serves as a trial supervisor: `<executable> __supervise …`
/// (a mode for knob's own use, not in the help) runs before any argument parsing.
public protocol SupervisedCommand: AsyncParsableCommand {}

extension SupervisedCommand {
    public static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == Supervisor.command { Supervisor.main(Array(arguments.dropFirst())) }
        // Everything knob writes from here on (store, logs, socket) is its user's only.
        UserUmask.restrictForKnob()
        // A mistyped command gets a suggestion rather than ArgumentParser's "unexpected arguments".
        let commands = configuration.subcommands.map { $0._commandName } + ["help"]
        if let first = arguments.first, !first.hasPrefix("-"), commands.count > 1, !commands.contains(first) {
            let hint = closest(first, in: commands).map { "; did you mean \($0)?" } ?? ""
            FileHandle.standardError.write(Data("error: \(_commandName) has no command \(first)\(hint) (\(_commandName) --help lists them)\n".utf8))
            Foundation.exit(2)
        }
        do {
            // The async parse, so that completions can read the store without blocking a thread.
            var command = try await asyncParseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // Wrong usage exits 2, as the README says and as Unix tools do (ArgumentParser's own is 64).
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            var message = fullMessage(for: error)
            if message.hasPrefix("Error: ") { message = "error: " + message.dropFirst("Error: ".count) }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(2)
        }
    }
}
