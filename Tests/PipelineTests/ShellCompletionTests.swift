import Foundation
import TestSupport
import Testing

/// `audit-ingest --generate-completion-script SHELL` (swift-argument-parser): a script the shell
/// accepts, offering the subcommands and their options.
@Suite struct ShellCompletionTests {
    @Test(arguments: ["bash", "zsh", "fish"]) func completionScriptsNameTheCommandsAndOptions(shell: String) throws {
        let script = try Shell.run(Shell.executable(named: "audit-ingest"), ["--generate-completion-script", shell])
        #expect(script.exitCode == 0, "\(script.output.prefix(500))")
        for word in ["consume", "backfill", "admin-port", "stop-timeout", "database-url"] {  // fish: -l admin-port
            #expect(script.output.contains(word), "\(shell) completion lacks \(word)")
        }
        guard shell == "bash" else { return }  // zsh and fish are not installed here to check the syntax
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("audit-ingest-\(UUID()).bash").path
        try Data(script.output.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let syntax = try Shell.run("/bin/bash", ["-n", path])
        #expect(syntax.exitCode == 0, "\(syntax.output)")
        let loaded = try Shell.run("/bin/bash", ["-c", "source '\(path)' && complete -p audit-ingest"])
        #expect(loaded.output.contains("-F _audit-ingest audit-ingest"), "\(loaded.output)")
    }
}
