-- Per tenant per day, partitioned by month on "date" (children tenant_metrics_YYYY_MM, created
-- alongside the audit_log months). audit_log_count is maintained exactly by the ingest
-- transaction; the rollup fills in the other figures.
CREATE TABLE tenant_metrics (
    id              uuid             NOT NULL DEFAULT gen_random_uuid(),
    tenant_id       uuid             NOT NULL,
    "date"          date             NOT NULL,
    user_count      integer          NOT NULL DEFAULT 0,
    item_count      integer          NOT NULL DEFAULT 0,
    audit_log_count bigint           NOT NULL DEFAULT 0,
    storage_used_mb double precision NOT NULL DEFAULT 0,
    active_users    integer          NOT NULL DEFAULT 0,
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, "date")
) PARTITION BY RANGE ("date");
CREATE INDEX idx_tenant_metrics_date ON tenant_metrics ("date");
