-- Hardening of what landed with the affiliate edge.

-- An administrator's block of a link, beside its owner's own status: the
-- owner cannot lift it, and lifting it leaves the owner's choice as it was.
ALTER TABLE crm.affiliate_links
    ADD COLUMN admin_disabled boolean NOT NULL DEFAULT false;

-- The login log keeps what was typed into the email field only when it is
-- an address: anything else may be a password typed in the wrong field.
-- Rows written before this rule lose such text: an address was stored in
-- lower case, so anything else is not one.
ALTER TABLE crm.login_log ALTER COLUMN email DROP NOT NULL;

UPDATE crm.login_log SET email = NULL
 WHERE account_id IS NULL
   AND (email <> lower(email)
        OR email !~ '^[a-z0-9!#$%&''*+/=?^_`{|}~.-]+@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]*[a-z0-9])?$');

-- Ids are stored in their canonical lower-case form, whatever the case of
-- the path that named them.
UPDATE crm.audit_log SET object_id = lower(object_id)
 WHERE object_id ~ '^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$'
   AND object_id <> lower(object_id);
