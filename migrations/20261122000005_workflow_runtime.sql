-- Workflow runtime state. An instance's execution state is one JSON document changed under the
-- instance's row lock by the pure runtime (crates/workflow/src/runtime); jobs, incidents live in
-- their own rows so that workers can claim jobs with FOR UPDATE SKIP LOCKED.
CREATE TABLE process_instance (
    process_instance_id   uuid        PRIMARY KEY,
    tenant_id             text        NOT NULL,
    process_definition_id uuid        NOT NULL REFERENCES process_definition,
    bpmn_process_id       text        NOT NULL,
    version               integer     NOT NULL,
    status                text        NOT NULL CHECK (status IN ('active', 'completed', 'terminated')),
    state                 jsonb       NOT NULL,
    revision              bigint      NOT NULL,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    ended_at              timestamptz
);
CREATE INDEX process_instance_list ON process_instance (tenant_id, status, bpmn_process_id, process_instance_id);
ALTER TABLE process_instance ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON process_instance
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON process_instance TO cpq_application;

CREATE TABLE job (
    job_id              uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    process_instance_id uuid        NOT NULL REFERENCES process_instance,
    element_key         bigint      NOT NULL,
    element_id          text        NOT NULL,
    job_type            text        NOT NULL,
    status              text        NOT NULL
        CHECK (status IN ('activatable', 'activated', 'completed', 'failed', 'error-thrown', 'cancelled')),
    retries             integer     NOT NULL,
    retry_at            timestamptz NOT NULL,
    lease_owner         text,
    lease_deadline      timestamptz,
    attempt             integer     NOT NULL DEFAULT 0,
    headers             jsonb       NOT NULL,
    variables           jsonb       NOT NULL,
    error_message       text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    UNIQUE (process_instance_id, element_key)
);
CREATE INDEX job_activatable ON job (job_type, retry_at) WHERE status = 'activatable';
CREATE INDEX job_leased ON job (job_type, lease_deadline) WHERE status = 'activated';
ALTER TABLE job ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON job
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON job TO cpq_application;

CREATE TABLE incident (
    incident_id         uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    process_instance_id uuid        NOT NULL REFERENCES process_instance,
    element_key         bigint      NOT NULL,
    element_id          text        NOT NULL,
    job_id              uuid        REFERENCES job,
    message             text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('open', 'resolved')),
    created_at          timestamptz NOT NULL,
    resolved_at         timestamptz
);
CREATE INDEX incident_open ON incident (tenant_id, status, created_at);
ALTER TABLE incident ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incident
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON incident TO cpq_application;

-- Workers serve every tenant, so claiming jobs looks across tenants. This function (run as the
-- owner, whom row-level security does not restrict) is the one door: it claims at most p_max
-- activatable or lease-expired jobs of one type, skipping rows other workers hold, and leases
-- them. Everything after the claim runs in a transaction scoped to the job's tenant.
CREATE FUNCTION job_activate(p_type text, p_worker text, p_max integer, p_lease_ms integer)
RETURNS TABLE (job_id uuid, tenant_id text, process_instance_id uuid, element_id text, retries integer,
               attempt integer, headers jsonb, variables jsonb, lease_deadline timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH picked AS (
        SELECT j.job_id FROM job j
        WHERE j.job_type = p_type
          AND ((j.status = 'activatable' AND j.retry_at <= now())
               OR (j.status = 'activated' AND j.lease_deadline < now()))
        ORDER BY j.retry_at, j.job_id
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    )
    UPDATE job j SET status = 'activated', lease_owner = p_worker,
        lease_deadline = now() + p_lease_ms * interval '1 millisecond',
        attempt = j.attempt + 1, updated_at = now()
    FROM picked WHERE j.job_id = picked.job_id
    RETURNING j.job_id, j.tenant_id, j.process_instance_id, j.element_id, j.retries, j.attempt,
              j.headers, j.variables, j.lease_deadline
$$;
REVOKE ALL ON FUNCTION job_activate(text, text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION job_activate(text, text, integer, integer) TO cpq_application;
