-- Catalog versions: drafts change; published versions are immutable, content-hashed and carry
-- their compiled form; activations say which published version is in force from when.
CREATE TABLE catalog_version (
    catalog_version_id uuid        PRIMARY KEY,
    tenant_id          text        NOT NULL,
    label              text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('draft', 'published', 'retired')),
    document           jsonb       NOT NULL,
    content_hash       text,
    compiled           jsonb,
    version            bigint      NOT NULL CHECK (version > 0),
    created_at         timestamptz NOT NULL,
    created_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL,
    updated_by         text        NOT NULL,
    published_at       timestamptz,
    published_by       text,
    CHECK ((status = 'draft') = (content_hash IS NULL)),
    CHECK ((status = 'draft') = (compiled IS NULL))
);
CREATE UNIQUE INDEX catalog_version_label_key ON catalog_version (tenant_id, label);
CREATE INDEX catalog_version_tenant_list ON catalog_version (tenant_id, catalog_version_id);

-- Published content never changes, whatever the caller: only the status may move on
-- (published -> retired).
CREATE FUNCTION catalog_version_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (NEW.document IS DISTINCT FROM OLD.document
        OR NEW.content_hash IS DISTINCT FROM OLD.content_hash
        OR NEW.compiled IS DISTINCT FROM OLD.compiled
        OR NEW.label IS DISTINCT FROM OLD.label) THEN
        RAISE EXCEPTION 'catalog version % is published and cannot change', OLD.catalog_version_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER catalog_version_immutable BEFORE UPDATE ON catalog_version
    FOR EACH ROW EXECUTE FUNCTION catalog_version_immutable();

ALTER TABLE catalog_version ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON catalog_version
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON catalog_version TO cpq_application;

CREATE TABLE catalog_activation (
    tenant_id          text        NOT NULL,
    effective_from     timestamptz NOT NULL,
    catalog_version_id uuid        NOT NULL REFERENCES catalog_version,
    activated_at       timestamptz NOT NULL,
    activated_by       text        NOT NULL,
    PRIMARY KEY (tenant_id, effective_from)
);
ALTER TABLE catalog_activation ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON catalog_activation
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON catalog_activation TO cpq_application;

-- The search projection of each published version's offerings, written once at publish.
CREATE TABLE catalog_offering (
    tenant_id          text    NOT NULL,
    catalog_version_id uuid    NOT NULL REFERENCES catalog_version,
    code               text    NOT NULL,
    name               text    NOT NULL,
    description        text,
    kind               text    NOT NULL,
    markets            text[]  NOT NULL,
    channels           text[]  NOT NULL,
    segments           text[]  NOT NULL,
    effective_from     date,
    effective_to       date,
    sellable           boolean NOT NULL,
    search             tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', code || ' ' || name || ' ' || coalesce(description, ''))) STORED,
    PRIMARY KEY (catalog_version_id, code)
);
-- btree_gin lets one GIN index lead with the version, so a text search reads only that version's
-- postings (a trusted extension: the database owner may create it).
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX catalog_offering_search ON catalog_offering USING gin (catalog_version_id, search);
CREATE INDEX catalog_offering_version_code ON catalog_offering (tenant_id, catalog_version_id, code);
ALTER TABLE catalog_offering ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON catalog_offering
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON catalog_offering TO cpq_application;
