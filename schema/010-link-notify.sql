-- Every change that alters a redirect's answer names the link on the
-- channel crm_links, in the changing transaction (PostgreSQL delivers it
-- at commit, and only then): each gateway worker listens and drops the
-- link from its host's cache, so a change made on one host applies on all
-- of them within a round trip, not at the end of the cache's TTL.

CREATE FUNCTION crm.links_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_links', NEW.id);
    RETURN NULL;
END
$$;

-- a new link too: an id looked up before it existed is cached as unknown
CREATE TRIGGER affiliate_links_notify_insert AFTER INSERT
    ON crm.affiliate_links
    FOR EACH ROW EXECUTE FUNCTION crm.links_notify();

CREATE TRIGGER affiliate_links_notify_update
    AFTER UPDATE OF status, admin_disabled, target_url
    ON crm.affiliate_links
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.admin_disabled IS DISTINCT FROM NEW.admin_disabled
          OR OLD.target_url IS DISTINCT FROM NEW.target_url)
    EXECUTE FUNCTION crm.links_notify();

-- an account deactivated (or active again): every link of its owner
-- answers differently (410)
CREATE FUNCTION crm.accounts_links_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_links', l.id)
       FROM crm.affiliate_links l
      WHERE l.owner_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_links_notify AFTER UPDATE OF is_active
    ON crm.accounts
    FOR EACH ROW
    WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION crm.accounts_links_notify();
