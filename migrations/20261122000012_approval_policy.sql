-- Approval policies per tenant, versioned (a new version never changes an old one), and what a
-- submission decided and who accepted.
CREATE TABLE approval_policy (
    tenant_id  text        NOT NULL,
    version    integer     NOT NULL CHECK (version > 0),
    policy     jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    PRIMARY KEY (tenant_id, version)
);
ALTER TABLE approval_policy ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON approval_policy
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON approval_policy TO cpq_application;

ALTER TABLE quote ADD COLUMN approval_decision jsonb;
ALTER TABLE quote ADD COLUMN accepted_at timestamptz;
ALTER TABLE quote ADD COLUMN accepted_by text;
