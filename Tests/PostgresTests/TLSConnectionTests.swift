import Foundation
import Postgres
import TestSupport
import Testing

/// TLS end to end: a PostgreSQL of the test's own serving a certificate signed by a CA the test
/// makes with openssl. `sslmode=verify-full` connects with that CA and the certificate's name,
/// and fails with libpq's reason (masked, with a hint) for another CA or another host name.
@Suite(.serialized, .timeLimit(.minutes(2))) struct TLSConnectionTests {
    @Test func verifyFullChecksTheCAAndTheHostName() throws {
        let pki = try TestPKI()
        let cluster = try PrivateCluster()
        try pki.install(in: cluster)

        func settings(_ host: String, rootCert: String) -> String {
            "host=\(host) hostaddr=127.0.0.1 port=\(cluster.port) user=postgres dbname=postgres password=not-needed "
                + "sslmode=verify-full sslrootcert=\(rootCert) connect_timeout=5"
        }
        let connection = try PostgresConnection(settings("localhost", rootCert: pki.caCertificate))
        defer { connection.close() }
        #expect(try connection.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar == "t")

        let wrongCA = #expect(throws: PostgresError.self) { try PostgresConnection(settings("localhost", rootCert: pki.otherCACertificate)) }
        #expect(wrongCA?.code == .connectionFailed)
        #expect(wrongCA?.message.contains("certificate verify failed") == true, "\(String(describing: wrongCA))")
        #expect(wrongCA.map { !"\($0)".contains("not-needed") } == true)

        let wrongHost = #expect(throws: PostgresError.self) { try PostgresConnection(settings("db.wrong.example", rootCert: pki.caCertificate)) }
        #expect(wrongHost?.message.contains("does not match host name \"db.wrong.example\"") == true, "\(String(describing: wrongHost))")

        let health = try Shell.run(Shell.executable(named: "audit-ingest"), ["health"], environment: [
            "DATABASE_URL": "postgresql://postgres@localhost:\(cluster.port)/postgres?sslmode=verify-full&sslrootcert=\(pki.caCertificate)"])
        #expect(health.output.contains("\"reachable\" : true"), "\(health.output)")
    }
}

/// A throwaway certificate authority, a server certificate for localhost/127.0.0.1 signed by
/// it, and an unrelated CA, made with openssl in a temporary directory.
struct TestPKI {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID().uuidString.prefix(8))").path
    var caCertificate: String { directory + "/ca.crt" }
    var otherCACertificate: String { directory + "/other-ca.crt" }

    init() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("subjectAltName=DNS:localhost,IP:127.0.0.1\n".utf8).write(to: URL(fileURLWithPath: directory + "/san.ext"))
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=audit-ingest test CA",
                     "-keyout", "ca.key", "-out", "ca.crt"])
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=some other CA",
                     "-keyout", "other-ca.key", "-out", "other-ca.crt"])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"])
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                     "-extfile", "san.ext", "-out", "server.crt"])
    }

    /// Copies the server certificate and key into the cluster, turns TLS on and restarts it.
    func install(in cluster: PrivateCluster) throws {
        for file in ["server.crt", "server.key"] {
            try FileManager.default.copyItem(atPath: directory + "/" + file, toPath: cluster.dataDirectory + "/" + file)
            if getuid() == 0 { try Shell.run("/bin/chown", ["postgres:postgres", cluster.dataDirectory + "/" + file]) }
            chmod(cluster.dataDirectory + "/" + file, 0o600)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster.dataDirectory + "/postgresql.conf"))
        handle.seekToEndOfFile()
        handle.write(Data("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n".utf8))
        try handle.close()
        try cluster.restart()
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try Shell.run("/bin/sh", ["-c", "cd '\(directory)' && exec openssl \"$@\"", "openssl"] + arguments)
        guard result.exitCode == 0 else {
            throw TestDatabase.Unavailable(description: "openssl \(arguments.joined(separator: " ")) failed: \(result.output)")
        }
    }
}
