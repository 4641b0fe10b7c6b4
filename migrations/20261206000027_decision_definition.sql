-- DMN deployments (issue 16). Like process definitions, decision definitions are platform
-- artifacts deployed with a release and the same for every tenant, so they carry no tenant. One
-- row per decision of a deployed file: a changed file is a new version of each of its decisions
-- (versions per decision id), the same file again (same checksum) is none. The whole file is kept
-- with each row so a version evaluates with the decisions it requires as they were deployed.
CREATE TABLE decision_definition (
    decision_definition_id      uuid        PRIMARY KEY,
    decision_id                 text        NOT NULL,
    version                     integer     NOT NULL CHECK (version > 0),
    name                        text        NOT NULL,
    -- The <definitions> element: the decision requirements graph the decision belongs to.
    decision_requirements_id    text        NOT NULL,
    decision_requirements_name  text        NOT NULL,
    checksum                    text        NOT NULL,
    resource_name               text        NOT NULL,
    dmn_xml                     text        NOT NULL,
    deployed_at                 timestamptz NOT NULL,
    deployed_by                 text        NOT NULL,
    UNIQUE (decision_id, version),
    UNIQUE (decision_id, checksum)
);
GRANT SELECT, INSERT ON decision_definition TO cpq_application;
