import Foundation
import Postgres
import Testing

@Suite struct ConnectionStringTests {
    @Test func masksPasswordInURI() {
        #expect(ConnectionString("postgresql://u:secret@h/db").masked == "postgresql://u:***@h/db")
        #expect(ConnectionString("postgres://u:s3cr@t@h:5432/db?sslmode=require").masked
                == "postgres://u:***@h:5432/db?sslmode=require")
    }

    @Test func masksPasswordQueryParameter() {
        #expect(ConnectionString("postgresql://h/db?user=u&password=secret&sslmode=require").masked
                == "postgresql://h/db?user=u&password=***&sslmode=require")
        #expect(ConnectionString("postgresql://h/db?pass%77ord=secret").masked == "postgresql://h/db?pass%77ord=***")
        #expect(ConnectionString("postgresql://h/db?sslpassword=keypass").masked == "postgresql://h/db?sslpassword=***")
    }

    @Test func masksPasswordsHoldingURIDelimiters() {
        // libpq ends the password at the first '@', not at '?' (issue 13: "hun?ter2" was shown).
        #expect(ConnectionString("postgresql://postgres:hun?ter2@host/db").masked == "postgresql://postgres:***@host/db")
        #expect(ConnectionString("postgresql://u:pa/ss@h/db").masked == "postgresql://u:***@h/db")
        #expect(ConnectionString("postgresql://u:p%40ss%3Fw@h:5432/db?application_name=x").masked
                == "postgresql://u:***@h:5432/db?application_name=x")
        #expect(ConnectionString("postgresql://u@h/db?password=hun?ter2&sslmode=require").masked
                == "postgresql://u@h/db?password=***&sslmode=require")
    }

    @Test func masksKeywordValuePasswords() {
        #expect(ConnectionString("host=h password=secret dbname=db").masked == "host=h password=*** dbname=db")
        #expect(ConnectionString("host=h password = 'se cret' dbname=db").masked == "host=h password = *** dbname=db")
        #expect(ConnectionString(#"host=h password='it\'s secret' dbname=db"#).masked == "host=h password=*** dbname=db")
        #expect(ConnectionString("host=h PASSWORD=secret sslpassword=keypass").masked == "host=h PASSWORD=*** sslpassword=***")
    }

    /// Whatever the password holds, libpq's parse finds it and the masked form does not.
    @Test(arguments: ["hun?ter2", "p@ss@word", "a/b?c@d", "x&password=y", "quote'and\\slash", "sp ace", "pct%41", "#frag", "=eq="])
    func noPasswordSurvivesMasking(password: String) throws {
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let escaped = password.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
        for text in ["postgresql://user:\(encoded)@db.example:5432/audit?sslmode=require",
                     "postgresql://user@db.example/audit?password=\(encoded)",
                     "host=db.example user=user password='\(escaped)' dbname=audit"] {
            let masked = ConnectionString(text).masked
            #expect(!masked.contains(password) && !masked.contains(encoded), "\(text) -> \(masked)")
            #expect(masked.contains("db.example"), "the rest stays readable: \(masked)")
        }
        // Unencoded too, as people type them: never shown, whatever libpq makes of it.
        let raw = "postgresql://user:\(password)@db.example/audit"
        #expect(!ConnectionString(raw).masked.contains(password), "\(ConnectionString(raw).masked)")
    }

    @Test func leavesStringsWithoutPasswordAlone() {
        #expect(ConnectionString("postgresql://u@h/db").masked == "postgresql://u@h/db")
        #expect(ConnectionString("host=/tmp dbname=audit").masked == "host=/tmp dbname=audit")
        #expect("\(ConnectionString("postgresql://u:pw@h/db"))" == "postgresql://u:***@h/db")
    }

    @Test func libpqMessagesLoseTheFragmentsMaskingHid() throws {
        let error = #expect(throws: PostgresError.self) { try PostgresConnection("postgresql://u:pa/ss@127.0.0.1:1/db") }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("for connection option \"port\""), "libpq's reason stays: \(text)")
        #expect(!text.contains("\"pa\"") && !text.contains("pa/ss"), "\(text)")
        #expect(ConnectionString("host=db.example password=x").redact(#"could not translate host name "db.example""#)
                == #"could not translate host name "db.example""#)
    }

    @Test func unparsableStringIsRefusedWithoutEchoingIt() throws {
        let error = #expect(throws: PostgresError.self) {
            try PostgresConnection("postgresql://u:a/b?c@h/db")
        }
        #expect(error.map { !"\($0)".contains("a/b") && !"\($0)".contains("c@h") } == true, "\(String(describing: error))")
    }
}
