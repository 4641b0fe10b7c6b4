-- Business rule tasks bound by version tag (issue 16): a decision's zeebe:versionTag, read from
-- the DMN file at deploy, picks the version a calledDecision with bindingType="versionTag" runs.
ALTER TABLE decision_definition ADD COLUMN version_tag text;
CREATE INDEX decision_definition_tag ON decision_definition (decision_id, version_tag, version DESC)
    WHERE version_tag IS NOT NULL;
