-- Leads, their stage history, and the indexes the API's queries use.

CREATE TABLE crm.leads (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id           uuid NOT NULL REFERENCES crm.accounts (id),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email              text CHECK (email = lower(email)),
    phone              text CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    company            text,
    shop_domain        text CHECK (shop_domain = lower(shop_domain)),
    source             text NOT NULL DEFAULT 'manual'
                       CHECK (source IN ('manual', 'affiliate', 'webhook', 'api')),
    stage              text NOT NULL,
    substage           text NOT NULL,
    score              integer NOT NULL CHECK (score BETWEEN 0 AND 100),
    value_cents        bigint NOT NULL DEFAULT 0 CHECK (value_cents >= 0),
    currency           text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    notes              text NOT NULL DEFAULT '',
    affiliate_link_id  text,
    version            integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);

-- every list is one owner's live leads, newest first, optionally by stage
CREATE INDEX leads_owner_created ON crm.leads (owner_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX leads_owner_stage ON crm.leads (owner_id, stage, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX leads_created ON crm.leads (created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

-- a lead's moves through the pipeline; the first row is its creation
CREATE TABLE crm.lead_stage_events (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id        uuid NOT NULL REFERENCES crm.leads (id),
    actor_id       uuid REFERENCES crm.accounts (id),
    from_stage     text,
    from_substage  text,
    to_stage       text NOT NULL,
    to_substage    text NOT NULL,
    score          integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX lead_stage_events_lead ON crm.lead_stage_events (lead_id, created_at, id);

-- the admin audit view reads newest first, optionally by actor or object
CREATE INDEX audit_log_actor ON crm.audit_log (actor_id, id);
