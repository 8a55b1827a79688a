-- Accounts, the login log and the audit log: the auth slice.

CREATE TABLE crm.accounts (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    full_name      text NOT NULL DEFAULT '',
    role           text NOT NULL DEFAULT 'member'
                   CHECK (role IN ('admin', 'member', 'merchant')),
    password_hash  text,
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX accounts_email_key ON crm.accounts (email);
CREATE INDEX accounts_created_at_id ON crm.accounts (created_at, id);

-- every login attempt, successful or not
CREATE TABLE crm.login_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  uuid REFERENCES crm.accounts (id),
    email       text NOT NULL,
    success     boolean NOT NULL,
    reason      text NOT NULL,
    ip          text NOT NULL,
    user_agent  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX login_log_account ON crm.login_log (account_id, created_at);
CREATE INDEX login_log_email ON crm.login_log (email, created_at);

-- who did what to which object, written in the transaction of the change
CREATE TABLE crm.audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id     uuid REFERENCES crm.accounts (id),
    action       text NOT NULL,
    object_type  text NOT NULL,
    object_id    text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_created ON crm.audit_log (created_at, id);
CREATE INDEX audit_log_object ON crm.audit_log (object_type, object_id);
