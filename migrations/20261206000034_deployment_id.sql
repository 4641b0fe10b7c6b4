-- Deployments of several resources (issue 16): the BPMN and DMN files of one deployment call share
-- a deployment id, and a calledDecision or calledElement with bindingType="deployment" runs the
-- version deployed together with the calling process's version, as Zeebe does. Earlier
-- deployments held one file each: a process version is its own deployment, and the decisions of
-- one file deployed at one instant share the first one's key.
ALTER TABLE process_definition ADD COLUMN deployment_id uuid;
UPDATE process_definition SET deployment_id = process_definition_id;
ALTER TABLE process_definition ALTER COLUMN deployment_id SET NOT NULL;
CREATE INDEX process_definition_deployment ON process_definition (deployment_id);

ALTER TABLE decision_definition ADD COLUMN deployment_id uuid;
UPDATE decision_definition d SET deployment_id = (
    SELECT min(o.decision_definition_id::text)::uuid FROM decision_definition o
    WHERE o.checksum = d.checksum AND o.deployed_at = d.deployed_at);
ALTER TABLE decision_definition ALTER COLUMN deployment_id SET NOT NULL;
CREATE INDEX decision_definition_deployment ON decision_definition (deployment_id, decision_id);

-- A deployment in which one file changed gives every file a new version, the unchanged ones too:
-- one file (checksum) may now be several versions of a process or decision.
ALTER TABLE process_definition DROP CONSTRAINT process_definition_bpmn_process_id_checksum_key;
CREATE INDEX process_definition_checksum ON process_definition (bpmn_process_id, checksum, version DESC);
ALTER TABLE decision_definition DROP CONSTRAINT decision_definition_decision_id_checksum_key;
CREATE INDEX decision_definition_checksum ON decision_definition (decision_id, checksum, version DESC);
