-- Message start events (issue 16, Zeebe's rule): a process has at most one active instance per
-- correlation key started by a message. A message meeting one is buffered (or dropped without a
-- time to live) and starts the next instance when that one ends.
ALTER TABLE process_instance ADD COLUMN message_correlation_key text;

CREATE UNIQUE INDEX process_instance_message_start ON process_instance (tenant_id, bpmn_process_id, message_correlation_key)
    WHERE status = 'active' AND message_correlation_key IS NOT NULL;
