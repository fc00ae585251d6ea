import Postgres
import TestSupport
import Testing

/// Checks the migrated schema from pg_catalog: what an operator relies on the schema to be.
@Suite(.timeLimit(.minutes(2))) struct SchemaCatalogTests {
    let connection: PostgresConnection
    let database: String

    init() throws {
        database = try TestDatabase.createMigrated()
        connection = try PostgresConnection(database)
    }

    @Test func tablesExist() throws {
        let tables = try connection.execute("""
            SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY relname
            """).rows.map { $0[0]! }
        #expect(tables == ["audit_batch", "audit_batch_group", "audit_batch_range", "audit_checkpoint", "audit_dead_letter", "audit_log",
                           "audit_log_node", "audit_log_origin", "audit_month_removed", "audit_operation", "audit_operation_group", "audit_signing_key", "audit_unsealed_month", "feed_legacy_month", "feed_writer", "ingest_offsets", "ingest_offsets_retired", "item", "read_cursor_key", "redaction_rule",
                           "schema_migrations", "source_body", "source_checkpoint", "stream_cursor", "stream_destination", "tenant", "tenant_api_token", "tenant_feed_month", "tenant_legal_hold", "tenant_login_role", "tenant_metrics",
                           "tenant_metrics_delta", "tenant_metrics_rollup_months", "tenant_retention", "user"])
    }

    @Test func auditLogAndTenantMetricsAreRangePartitionedByMonthKeyWithoutDefault() throws {
        let rows = try connection.execute("""
            SELECT c.relname, p.partstrat, a.attname, p.partdefid
            FROM pg_partitioned_table p
            JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
            ORDER BY c.relname
            """).rows
        #expect(rows == [["audit_log", "r", "timestamp", "0"], ["tenant_metrics", "r", "date", "0"]])
    }

    @Test func auditLogColumnsMatchTheCopyContract() throws {
        let columns = try connection.execute("""
            SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
            FROM pg_attribute WHERE attrelid = 'audit_log'::regclass AND attnum > 0 AND NOT attisdropped
            """).scalar
        #expect(columns == "id:uuid,tenant_id:uuid,user_id:uuid,action:text,resource_type:text,resource_id:text,"
                + "severity:text,timestamp:timestamp with time zone,ip_address:inet,user_agent:text,custom_metadata:jsonb,"
                + "ingest_xid:xid8,ingested_at:timestamp with time zone,batch_id:bigint")
        // The COPY sends the eleven event columns and batch_id; the others have defaults, and
        // batch_id's 0 marks the rows stored before sealing began (0018).
        let defaults = try connection.execute("""
            SELECT string_agg(attname || '=' || pg_get_expr(adbin, adrelid), ',' ORDER BY attnum)
            FROM pg_attrdef JOIN pg_attribute ON attrelid = adrelid AND attnum = adnum WHERE adrelid = 'audit_log'::regclass
            """).scalar
        #expect(defaults == "ingest_xid=pg_current_xact_id(),ingested_at=now(),batch_id=0")
        let primaryKey = try connection.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'p'").scalar
        #expect(primaryKey == "PRIMARY KEY (tenant_id, \"timestamp\", id)")  // since 0017
    }

    @Test func everySeedIndexExistsAndIsWellFormed() throws {
        let indexes = Dictionary(uniqueKeysWithValues: try connection.execute("""
            SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
            WHERE indrelid IN ('tenant'::regclass, '"user"'::regclass, 'item'::regclass, 'audit_log'::regclass)
            """).rows.map { ($0[0]!, $0[1]!) })
        let expected = [
            "idx_user_tenant_email_active": "(tenant_id, email, is_active)",
            "idx_user_tenant_role_active": "(tenant_id, role, is_active)",
            "idx_user_tenant_last_login": "(tenant_id, last_login_at DESC)",
            "idx_user_active_only": "WHERE (is_active = true)",
            "idx_item_tenant_created_desc": "(tenant_id, created_at DESC)",
            "idx_item_tenant_owner_created": "(tenant_id, owner_id, created_at DESC)",
            "idx_item_tenant_title": "(tenant_id, title)",
            "idx_item_tenant_title_search": "USING gin (tenant_id, to_tsvector('english'::regconfig, (title)::text))",
            "idx_item_description_search": "USING gin (to_tsvector(",
            "audit_log_pkey": "UNIQUE INDEX audit_log_pkey ON ONLY public.audit_log USING btree (tenant_id, \"timestamp\", id)",
            "idx_audit_tenant_action": "(tenant_id, action)",
            "idx_audit_high_severity": "(tenant_id, \"timestamp\") WHERE (severity = ANY (ARRAY['WARNING'::text, 'ERROR'::text, 'CRITICAL'::text]))",
            "idx_audit_metadata_search": "USING gin (custom_metadata jsonb_path_ops)",
        ]
        // Since 0017 the key's leading columns serve what idx_audit_tenant_timestamp did.
        #expect(indexes["idx_audit_tenant_timestamp"] == nil)
        // Since 0032 the partial index (WARNING and above, in time order) serves what the
        // (tenant_id, severity) composite did.
        #expect(indexes["idx_audit_tenant_severity"] == nil)
        for (name, fragment) in expected {
            let definition = try #require(indexes[name], "missing index \(name)")
            #expect(definition.contains(fragment), "\(name): \(definition)")
        }
    }

    @Test func rowLevelSecurityIsOnForTenantScopedTables() throws {
        let rows = try connection.execute("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname)
            FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
            WHERE c.relname IN ('tenant', 'user', 'item', 'audit_log', 'tenant_metrics', 'tenant_metrics_delta') AND c.relnamespace = 'public'::regnamespace
            GROUP BY 1, 2, 3 ORDER BY 1
            """).rows
        // Forced on the tenant tables, with the owner's system-scope policy beside tenant isolation
        // (0007); not forced where the owner may ingest (COPY FROM is refused under forced RLS).
        #expect(rows == [["audit_log", "t", "f", "1"], ["item", "t", "t", "2"], ["tenant", "t", "t", "2"],
                         ["tenant_metrics", "t", "f", "1"], ["tenant_metrics_delta", "t", "f", "1"], ["user", "t", "t", "2"]])
        let roles = try connection.execute(
            "SELECT rolname, rolbypassrls FROM pg_roles WHERE rolname IN ('audit_ingest', 'audit_reader') ORDER BY 1").rows
        #expect(roles == [["audit_ingest", "t"], ["audit_reader", "f"]])
    }

    @Test func readerSeesOnlyItsTenantsRows() throws {
        try connection.execute("""
            INSERT INTO tenant (id, name, code) VALUES
                ('00000000-0000-0000-0000-00000000000a', 'Acme', 'acme'),
                ('00000000-0000-0000-0000-00000000000b', 'Globex', 'globex');
            INSERT INTO "user" (tenant_id, email) VALUES
                ('00000000-0000-0000-0000-00000000000a', 'a@acme.test'),
                ('00000000-0000-0000-0000-00000000000b', 'b@globex.test');
            """)
        let counts = try connection.transaction { connection -> [String?] in
            try connection.execute("SET LOCAL ROLE audit_reader")
            try connection.execute("SET LOCAL app.tenant_id = '00000000-0000-0000-0000-00000000000a'")
            let scoped = try connection.execute("SELECT (SELECT count(*) FROM tenant), (SELECT string_agg(email, ',') FROM \"user\")").rows[0]
            try connection.execute("SET LOCAL app.tenant_id = ''")
            let unset = try connection.execute("SELECT count(*) FROM \"user\"").scalar
            return scoped + [unset]
        }
        #expect(counts == ["1", "a@acme.test", "0"])
    }

    /// The ingest appends counts to tenant_metrics_delta; tenant_metrics_current adds them to
    /// tenant_metrics (a day only in the deltas too), for a reader its own tenant's only, and a
    /// fold moves them into tenant_metrics without changing what the view shows.
    @Test func countsAreExactInTenantMetricsCurrentBeforeAndAfterAFold() throws {
        let (a, b) = ("00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b")
        try connection.execute("""
            SELECT ensure_month_partitions('2026-05-01');
            INSERT INTO tenant_metrics (tenant_id, "date", audit_log_count, user_count) VALUES
                ('\(a)', '2026-05-01', 10, 4), ('\(b)', '2026-05-01', 7, 1);
            INSERT INTO tenant_metrics_delta (tenant_id, "date", audit_log_count) VALUES
                ('\(a)', '2026-05-01', 2), ('\(a)', '2026-05-01', 3), ('\(a)', '2026-05-02', 3), ('\(b)', '2026-05-01', 1);
            """)
        func readerView() throws -> [[String?]] {
            try connection.transaction { connection in
                try connection.execute("SET LOCAL ROLE audit_reader")
                try connection.execute("SET LOCAL app.tenant_id = '\(a)'")
                return try connection.execute(
                    #"SELECT "date"::text, audit_log_count, user_count FROM tenant_metrics_current ORDER BY 1"#).rows
            }
        }
        let expected: [[String?]] = [["2026-05-01", "15", "4"], ["2026-05-02", "3", "0"]]
        #expect(try readerView() == expected)
        #expect(try connection.execute("SELECT fold_tenant_metrics_deltas()").scalar == "4")
        #expect(try readerView() == expected)
        #expect(try connection.execute("SELECT count(*) FROM tenant_metrics_delta").scalar == "0")
        let folded = try connection.execute(
            #"SELECT tenant_id::text, "date"::text, audit_log_count, user_count FROM tenant_metrics ORDER BY 1, 2"#).rows
        #expect(folded == [[a, "2026-05-01", "15", "4"], [a, "2026-05-02", "3", "0"], [b, "2026-05-01", "8", "1"]])
    }

    /// Definer functions run as the owner: each resolves names only in the schema (a function
    /// replaced by a later migration loses the setting unless that migration sets it again).
    @Test func everySecurityDefinerFunctionHasAFixedSearchPath() throws {
        let unpinned = try connection.execute("""
            SELECT proname FROM pg_proc
            WHERE prosecdef AND pronamespace = 'public'::regnamespace
              AND NOT coalesce(array_to_string(proconfig, ',') LIKE '%search_path=%', false)
            ORDER BY 1
            """).rows.map { $0[0] ?? "" }
        #expect(unpinned == [])
    }

    /// One fold at a time: while another holds the fold lock, a fold returns 0 at once and leaves
    /// the deltas; readers may not fold.
    @Test func aFoldWhileAnotherRunsReturnsAtOnceAndReadersMayNotFold() throws {
        try connection.execute("""
            SELECT ensure_month_partitions('2026-05-01');
            INSERT INTO tenant_metrics_delta (tenant_id, "date", audit_log_count) VALUES
                ('00000000-0000-0000-0000-00000000000a', '2026-05-01', 2);
            """)
        let other = try PostgresConnection(database)
        defer { other.close() }
        try other.execute("BEGIN")
        #expect(try other.execute("SELECT fold_tenant_metrics_deltas()").scalar == "1")
        #expect(try connection.execute("SELECT fold_tenant_metrics_deltas()").scalar == "0")
        try other.execute("ROLLBACK")
        #expect(try connection.execute("SELECT fold_tenant_metrics_deltas()").scalar == "1")
        #expect(throws: PostgresError.self) {
            try connection.transaction { connection in
                try connection.execute("SET LOCAL ROLE audit_reader")
                try connection.execute("SELECT fold_tenant_metrics_deltas()")
            }
        }
    }

    @Test func tenantDefaultsAreTheSeeds() throws {
        try connection.execute("INSERT INTO tenant (name, code) VALUES ('Initech', 'initech')")
        let row = try connection.execute(
            "SELECT status, max_users, max_storage_gb, features_enabled::text FROM tenant WHERE code = 'initech'").rows[0]
        #expect(row == ["active", "100", "10", "{}"])
    }
}
