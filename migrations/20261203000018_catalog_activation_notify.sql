-- Every API instance keeps each tenant's activation schedule in memory and drops it when told:
-- a committed activation notifies channel catalog_activation with its tenant (notifications are
-- delivered at commit, only for committed transactions).
CREATE FUNCTION catalog_activation_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catalog_activation', NEW.tenant_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_activation_notify
    AFTER INSERT ON catalog_activation
    FOR EACH ROW EXECUTE FUNCTION catalog_activation_notify();
