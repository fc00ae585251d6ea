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
    }

    @Test func masksKeywordValuePasswords() {
        #expect(ConnectionString("host=h password=secret dbname=db").masked == "host=h password=*** dbname=db")
        #expect(ConnectionString("host=h password = 'se cret' dbname=db").masked == "host=h password = *** dbname=db")
    }

    @Test func leavesStringsWithoutPasswordAlone() {
        #expect(ConnectionString("postgresql://u@h/db").masked == "postgresql://u@h/db")
        #expect(ConnectionString("host=/tmp dbname=audit").masked == "host=/tmp dbname=audit")
        #expect("\(ConnectionString("postgresql://u:pw@h/db"))" == "postgresql://u:***@h/db")
    }
}
