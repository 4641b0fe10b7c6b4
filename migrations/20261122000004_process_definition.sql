-- Workflow deployments. Process definitions are platform artifacts (deployed with a release, the
-- same for every tenant), so they carry no tenant; which version a tenant's new instances use is
-- decided by process_version_rule. Worker groups register the job types they can execute;
-- deploying a process that needs a job type nobody executes is refused.
CREATE TABLE process_definition (
    process_definition_id   uuid        PRIMARY KEY,
    bpmn_process_id         text        NOT NULL,
    version                 integer     NOT NULL CHECK (version > 0),
    name                    text,
    checksum                text        NOT NULL,
    resource_name           text        NOT NULL,
    bpmn_xml                text        NOT NULL,
    model                   jsonb       NOT NULL,
    job_types               text[]      NOT NULL,
    release_id              text,
    source_commit           text,
    variable_schema_version integer     NOT NULL DEFAULT 1,
    deployed_at             timestamptz NOT NULL,
    deployed_by             text        NOT NULL,
    UNIQUE (bpmn_process_id, version),
    UNIQUE (bpmn_process_id, checksum)
);
GRANT SELECT, INSERT ON process_definition TO cpq_application;

CREATE TABLE worker_group (
    group_name     text        PRIMARY KEY,
    job_types      text[]      NOT NULL,
    worker_version text        NOT NULL,
    last_heartbeat timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON worker_group TO cpq_application;

-- Routing of new instances (seed part 056 section 9.3): the most specific matching rule wins
-- (tenant, product line and release flag each count), then priority; no rule → latest version.
CREATE TABLE process_version_rule (
    process_version_rule_id uuid    PRIMARY KEY,
    bpmn_process_id         text    NOT NULL,
    -- The tenant the rule routes (a platform rule about a tenant, not tenant-owned data).
    target_tenant           text,
    product_line            text,
    release_flag            text,
    version                 integer NOT NULL,
    priority                integer NOT NULL DEFAULT 0,
    FOREIGN KEY (bpmn_process_id, version) REFERENCES process_definition (bpmn_process_id, version)
);
CREATE INDEX process_version_rule_process ON process_version_rule (bpmn_process_id);
GRANT SELECT, INSERT, DELETE ON process_version_rule TO cpq_application;
