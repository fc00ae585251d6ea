import Foundation
import Postgres

/// CPU time of this process and of the PostgreSQL server's backends.
struct ResourceUsage {
    /// User + system CPU seconds of audit-ingest in this process so far: the process's time less
    /// that of the embedded Kafka cluster's thread (librdkafka names it rdk:mock), which stands in
    /// for a broker that would run elsewhere, and that of the bench's CPU sampler.
    static func processCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let process = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
        return process - threadCPU(named: "rdk:mock") - threadCPU(named: CPUSampler.threadName)
    }

    /// CPU seconds of this process's live threads called `name` (from /proc; 0 elsewhere).
    static func threadCPU(named name: String) -> Double {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return 0 }
        var ticks = 0.0
        for thread in threads {
            guard let comm = try? String(contentsOfFile: "/proc/self/task/\(thread)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .newlines) == name,
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(thread)/stat", encoding: .utf8),
                  let afterName = stat.lastIndex(of: ")") else { continue }
            // After the name: utime and stime are the 12th and 13th fields.
            let fields = stat[stat.index(after: afterName)...].split(separator: " ")
            if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) { ticks += user + system }
        }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Peak resident memory of this process, in MiB.
    static func maxResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// The postmaster's pid, when the server runs on this machine and says where its data is.
    static func postmasterPID(on connection: PostgresConnection) -> pid_t? {
        guard let directory = try? connection.execute("SHOW data_directory").scalar,
              let text = try? String(contentsOfFile: directory + "/postmaster.pid", encoding: .utf8),
              let pid = text.split(separator: "\n").first.flatMap({ pid_t($0) }) else { return nil }
        return pid
    }

    /// Waits (up to 5 s) until no session of `database` but the caller's is left, so the
    /// postmaster has reaped their backends and counted their CPU time.
    static func waitForSessionsToEnd(of database: String, on connection: PostgresConnection) {
        for _ in 0..<100 {
            let others = try? connection.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [database]).scalar
            if others == "0" { usleep(50_000); return }
            usleep(50_000)
        }
    }

    /// CPU seconds of the server's exited backends (the postmaster's reaped children): a backend's
    /// time counts once its session closed. nil when the server is not local.
    static func serverCPU(postmaster: pid_t?) -> Double? {
        guard let postmaster, let stat = try? String(contentsOfFile: "/proc/\(postmaster)/stat", encoding: .utf8),
              let afterName = stat.lastIndex(of: ")") else { return nil }
        // Fields after the name: state is 3rd; cutime and cstime are the 16th and 17th.
        let fields = stat[stat.index(after: afterName)...].split(separator: " ")
        guard fields.count > 15, let children = Double(fields[13]), let system = Double(fields[14]) else { return nil }
        return (children + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU seconds of the server so far: its exited backends' (as `serverCPU`) and those of its
    /// processes still running (each backend, the checkpointer, autovacuum workers, ...).
    static func serverCPUIncludingLive(postmaster: pid_t?) -> Double? {
        guard let reaped = serverCPU(postmaster: postmaster), let postmaster,
              let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        var ticks = 0.0
        for entry in entries where entry.first?.isNumber == true {
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let afterName = stat.lastIndex(of: ")") else { continue }
            // After the name: ppid is the 2nd field; utime and stime the 12th and 13th.
            let fields = stat[stat.index(after: afterName)...].split(separator: " ")
            guard fields.count > 12, pid_t(fields[1]) == postmaster,
                  let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            ticks += user + system
        }
        return reaped + ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
