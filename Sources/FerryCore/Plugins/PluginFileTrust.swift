#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Whether a plugin file may be loaded: a plugin runs as this process, so
/// whoever can write the file, or any folder on the way to it, can run code
/// as this process. Like OpenSSH with its key files, the file and every
/// folder from `/` down to it must be owned by root or this process's
/// effective user and be writable by neither group nor others. A sticky bit
/// does not make the folder holding the plugin (or a link to it) acceptable,
/// since anyone may still add a file there. Higher up it does, for the one
/// case it makes safe: a sticky folder (such as `/tmp`) on the way to a folder
/// owned by root or this user, which no one else may rename or replace.
/// Symbolic links are followed hop by hop, and every folder a name is looked
/// up in is checked, so a link in a trusted folder pointing into an open one
/// is refused, and so is a link in an open folder pointing anywhere.
public enum PluginFileTrust {
    /// `strict` refuses; `insecureDev` loads anyway and says so with every
    /// plugin it loads (for developers whose build trees sit under `/tmp`).
    public enum Mode: Sendable, Equatable {
        case strict
        case insecureDev
    }

    public static let environmentVariable = "FERRY_PLUGIN_TRUST"
    public static let insecureDevValue = "insecure-dev"

    /// `insecure-dev` only when asked for by that exact value; anything else is strict.
    public static func mode(environment: [String: String] = ProcessInfo.processInfo.environment) -> Mode {
        environment[environmentVariable] == insecureDevValue ? .insecureDev : .strict
    }

    /// Said once per catalog or command when the checks are relaxed.
    public static let insecureDevNotice =
        "\(environmentVariable)=\(insecureDevValue): plugin files are loaded even where other users can write them; never set this in production"

    /// What `check` found: the real path of the file, which is what to open
    /// (no one but root and this user can change what it names afterwards),
    /// and the first rule broken on the way, if any.
    public struct Resolved: Sendable {
        public var realPath: String
        public var violation: String?
    }

    /// Resolves `path` (relative to the working directory) hop by hop and
    /// checks it. In `strict` mode a broken rule throws `.insecurePermissions`;
    /// in `insecureDev` mode it is returned for the caller to warn about.
    public static func check(_ path: String, mode: Mode = .strict, euid: uid_t = geteuid()) throws(PluginLoadError) -> Resolved {
        let resolved: Resolved
        do {
            resolved = try resolve(path, euid: euid)
        } catch {
            switch error {
            case .missing: throw PluginLoadError(path: path, .notFound)
            case .notRegular(let detail): throw PluginLoadError(path: path, .notSharedObject(detail))
            }
        }
        if let violation = resolved.violation, mode == .strict {
            throw PluginLoadError(path: path, .insecurePermissions(violation))
        }
        return resolved
    }

    enum Failure: Error {
        case missing
        case notRegular(String)
    }

    static func resolve(_ path: String, euid: uid_t) throws(Failure) -> Resolved {
        var pending: [String] = []
        if !path.hasPrefix("/") {
            let cwd = FileManager.default.currentDirectoryPath
            guard cwd.hasPrefix("/") else { throw .missing }
            pending = components(cwd)
        }
        pending += components(path)
        pending.reverse()  // popped from the end

        var current = "/"
        var link: String?  // the first symbolic link followed, for the message
        var violation: String?
        func note(_ kind: String, _ path: String, _ info: stat) {
            guard violation == nil, let problem = problem(info, euid: euid) else { return }
            violation = "\(kind) \(path) \(problem)" + (link.map { " (reached through the symbolic link \($0))" } ?? "")
        }
        // A sticky folder others may write: its verdict waits for the entry
        // looked up in it (see the type's comment).
        var stickyOpen: (path: String, info: stat)?
        func settleSticky(_ entry: stat?) {
            guard let open = stickyOpen else { return }
            stickyOpen = nil
            if let entry, entry.st_mode & S_IFMT == S_IFDIR, entry.st_uid == 0 || entry.st_uid == euid { return }
            note("folder", open.path, open.info)
        }
        var hops = 0
        var info = stat()
        guard lstat("/", &info) == 0 else { throw .missing }
        note("folder", "/", info)
        while let name = pending.popLast() {
            if name == "." { continue }
            if name == ".." {
                settleSticky(nil)
                // `current` is a real path whose folders were all checked on the way down.
                current = (current as NSString).deletingLastPathComponent
                continue
            }
            let next = current == "/" ? "/" + name : current + "/" + name
            guard lstat(next, &info) == 0 else { throw .missing }
            settleSticky(info)
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                hops += 1
                guard hops <= 40, let target = readLink(next) else { throw .notRegular("too many symbolic links at \(next)") }
                if link == nil { link = next }
                if target.hasPrefix("/") { current = "/" }
                pending += components(target).reversed()
            case S_IFDIR:
                let ownedWell = info.st_uid == 0 || info.st_uid == euid
                if ownedWell, info.st_mode & S_ISVTX != 0, problem(info, euid: euid) != nil {
                    stickyOpen = (next, info)
                } else {
                    note("folder", next, info)
                }
                current = next
            case S_IFREG:
                guard pending.allSatisfy({ $0 == "." }) else { throw .notRegular("\(next) is a file, not a folder") }
                note("file", next, info)
                return Resolved(realPath: next, violation: violation)
            default:
                throw .notRegular("\(next) is not a regular file")
            }
        }
        throw .notRegular("\(current) is a folder, not a file")
    }

    /// The first rule `info` breaks, or nil.
    static func problem(_ info: stat, euid: uid_t) -> String? {
        let mode = "mode " + String(info.st_mode & 0o7777, radix: 8).leftPadded(to: 4)
        if info.st_uid != 0 && info.st_uid != euid {
            return "is owned by uid \(info.st_uid), not by root or the user running ferry (uid \(euid))"
        }
        if info.st_mode & S_IWOTH != 0 { return "is writable by others (\(mode))" }
        if info.st_mode & S_IWGRP != 0 { return "is writable by its group (\(mode))" }
        return nil
    }

    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
