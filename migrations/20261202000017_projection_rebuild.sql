-- Rebuild tables for `cpq-admin replay`: a replay applies a topic's events here, compares the
-- result with the live projection (row count and content hash) and merges it into the live table
-- only when asked. Written and read by the schema owner (cpq-admin) alone: the application role
-- has no grant; row-level security is on like every tenant-owned table, should one ever be given.
CREATE TABLE quote_search_rebuild (LIKE quote_search INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE quote_search_rebuild ADD PRIMARY KEY (quote_id);
ALTER TABLE quote_search_rebuild ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quote_search_rebuild
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));

CREATE TABLE audit_export_rebuild (LIKE audit_export INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE audit_export_rebuild ADD PRIMARY KEY (event_id);
ALTER TABLE audit_export_rebuild ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_export_rebuild
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
