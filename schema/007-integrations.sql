-- CRM integrations: an account's connection to a provider, its sealed
-- credentials, and the log of every call made with them.

-- One row per account and type, kept after a disconnect (the log stays
-- readable, and a later connect reuses the row): disconnecting destroys
-- the sealed credentials.  Sealed records are AES-256-GCM (nonce |
-- ciphertext | tag) made in the gateway with the key named by key_id;
-- the key itself never reaches the database.
CREATE TABLE crm.integrations (
    account_id       uuid NOT NULL REFERENCES crm.accounts (id),
    crm_type         text NOT NULL
                     CHECK (crm_type IN ('klaviyo', 'salesforce', 'creatio')),
    status           text NOT NULL
                     CHECK (status IN ('connected', 'error', 'disconnected')),
    key_id           text,
    sealed           bytea,
    settings         jsonb NOT NULL DEFAULT '{}',
    account          jsonb NOT NULL DEFAULT '{}',
    connected_at     timestamptz,
    disconnected_at  timestamptz,
    last_sync_at     timestamptz,
    last_error       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, crm_type),
    CONSTRAINT integrations_sealed_while_connected
        CHECK ((status = 'disconnected') = (sealed IS NULL)
               AND (sealed IS NULL) = (key_id IS NULL))
);

-- The sync queue's jobs (filled by lead events in a later migration);
-- the status endpoint counts them by state.
CREATE TABLE crm.sync_jobs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  uuid NOT NULL,
    crm_type    text NOT NULL,
    state       text NOT NULL
                CHECK (state IN ('pending', 'ok', 'failed', 'dead', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (account_id, crm_type)
        REFERENCES crm.integrations (account_id, crm_type)
);

CREATE INDEX sync_jobs_integration ON crm.sync_jobs (account_id, crm_type, state);

-- Every call made to a provider for an account: validate and connect
-- attempts now, sync attempts later.  Never a credential, a session id or
-- a provider's body.
CREATE TABLE crm.sync_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES crm.accounts (id),
    crm_type     text NOT NULL,
    operation    text NOT NULL,
    entity       text,
    entity_id    text,
    outcome      text NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed', 'timeout')),
    http_status  int,
    duration_ms  int NOT NULL CHECK (duration_ms >= 0),
    attempt      int NOT NULL DEFAULT 1,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sync_log_integration ON crm.sync_log (account_id, crm_type, id);
