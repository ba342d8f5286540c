import Foundation
import PackagePlugin

/// Gives the target it is applied to a generated `GitCommit.swift` with `let gitCommit`: the
/// short hash of the commit the package is built from, with `-dirty` when tracked files were
/// changed, or "unknown" outside git (scripts/git-commit.sh). A prebuild command, so it runs
/// before every build: a commit or an edit changes the answer without changing any file SwiftPM
/// could name as an input.
@main
struct GitCommitPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let package = context.package.directoryURL
        let folder = context.pluginWorkDirectoryURL.appending(path: "GeneratedSources")
        return [
            .prebuildCommand(
                displayName: "Reading the git commit of \(package.lastPathComponent)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [package.appending(path: "scripts/git-commit.sh").path, package.path,
                            folder.appending(path: "GitCommit.swift").path],
                outputFilesDirectory: folder),
        ]
    }
}
