import ArgumentParser
import AuditCore
import Bench
import Pipeline

// Option values ArgumentParser parses: `--help` lists the choices, and a wrong value is refused
// with them (exit 64) before anything runs.
extension ChangedSourcePolicy: ExpressibleByArgument {}
extension FileSource.PartialLastLine: ExpressibleByArgument {}
extension UnknownTenantPolicy: ExpressibleByArgument {}
extension EventFormat: ExpressibleByArgument {}
extension BenchOptions.Mode: ExpressibleByArgument {}
