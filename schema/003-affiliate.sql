-- Affiliate links, their clicks, attributions, conversions, commission
-- wallets with their append-only ledger, and stored idempotent answers.

-- 10 random base62 characters and 2 check characters (crm_ids.h)
CREATE TABLE crm.affiliate_links (
    id              text PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{12}$'),
    owner_id        uuid NOT NULL REFERENCES crm.accounts (id),
    merchant_id     uuid REFERENCES crm.accounts (id),
    name            text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    target_url      text NOT NULL CHECK (length(target_url) BETWEEN 1 AND 2048),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'disabled')),
    install_cents   bigint NOT NULL CHECK (install_cents BETWEEN 0 AND 100000000),
    conversion_bps  integer NOT NULL CHECK (conversion_bps BETWEEN 0 AND 10000),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX affiliate_links_owner ON crm.affiliate_links (owner_id, created_at DESC, id DESC);

-- a link's counters: clicks are added by the click flush, in the
-- transaction that inserts them; installs, conversions and earnings by the
-- callbacks, in theirs.  One row per link, created with it.
CREATE TABLE crm.affiliate_link_stats (
    link_id         text PRIMARY KEY REFERENCES crm.affiliate_links (id),
    clicks          bigint NOT NULL DEFAULT 0,
    installs        bigint NOT NULL DEFAULT 0,
    conversions     bigint NOT NULL DEFAULT 0,
    earnings_cents  bigint NOT NULL DEFAULT 0,
    last_click_at   timestamptz
);

-- Clicks, written in batches by the redirect's click queue.  A click id
-- carries its link id and its second (crm_ids.h), so the same click
-- written twice (a batch replayed after a crash) is the same key: the
-- replay inserts with ON CONFLICT DO NOTHING.  Partitioned by month; the
-- flush creates the partitions it needs (crm.click_partition_ensure).
-- The key leads with the time, so a batch's rows land at the right edge of
-- the index instead of all over it; a click is found by its id and the
-- second its id carries.  Ids compare byte by byte (COLLATE "C").
CREATE TABLE crm.clicks (
    click_id     text COLLATE "C" NOT NULL,
    link_id      text COLLATE "C" NOT NULL,
    clicked_at   timestamptz NOT NULL,
    shop_domain  text,
    ip           text NOT NULL,
    user_agent   text NOT NULL,
    referer      text NOT NULL,
    is_bot       boolean NOT NULL,
    is_head      boolean NOT NULL,
    PRIMARY KEY (clicked_at, click_id)
) PARTITION BY RANGE (clicked_at);

CREATE INDEX clicks_link ON crm.clicks (link_id, clicked_at);

-- the partition holding month m (any time in it), created once
CREATE FUNCTION crm.click_partition_ensure(m timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo    timestamptz := date_trunc('month', m AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name  text := 'clicks_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
    IF to_regclass('crm.' || name) IS NOT NULL THEN
        RETURN;
    END IF;

    -- two flushes may meet here; the second waits, then finds the table
    PERFORM pg_advisory_xact_lock(hashtext('crm.clicks partitions'));

    IF to_regclass('crm.' || name) IS NULL THEN
        EXECUTE format('CREATE TABLE crm.%I PARTITION OF crm.clicks '
                       'FOR VALUES FROM (%L) TO (%L)',
                       name, lo, lo + interval '1 month');
    END IF;
END
$$;

SELECT crm.click_partition_ensure(now());
SELECT crm.click_partition_ensure(now() + interval '1 month');

-- an install: one per link and shop, and one per sender's event id
CREATE TABLE crm.attributions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    link_id      text NOT NULL REFERENCES crm.affiliate_links (id),
    owner_id     uuid NOT NULL REFERENCES crm.accounts (id),
    lead_id      uuid NOT NULL REFERENCES crm.leads (id),
    shop_domain  text NOT NULL,
    click_id     text,
    event_id     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (link_id, shop_domain)
);

CREATE UNIQUE INDEX attributions_event ON crm.attributions (event_id)
    WHERE event_id IS NOT NULL;
CREATE INDEX attributions_shop ON crm.attributions (shop_domain, created_at DESC);

-- an install finds the link owner's lead for the shop, under a lock
CREATE INDEX leads_owner_shop ON crm.leads (owner_id, shop_domain)
    WHERE deleted_at IS NULL;

-- a purchase, once per order id
CREATE TABLE crm.conversions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id          text NOT NULL UNIQUE CHECK (length(order_id) BETWEEN 1 AND 200),
    link_id           text NOT NULL REFERENCES crm.affiliate_links (id),
    owner_id          uuid NOT NULL REFERENCES crm.accounts (id),
    attribution_id    uuid REFERENCES crm.attributions (id),
    click_id          text,
    shop_domain       text,
    amount_cents      bigint NOT NULL CHECK (amount_cents >= 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    commission_cents  bigint NOT NULL CHECK (commission_cents >= 0),
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX conversions_link ON crm.conversions (link_id, created_at);

-- A commission wallet: created with its first ledger row.  The balance is
-- a cache of the ledger's sum, changed only in the transaction that
-- appends the row, and can never go below zero.
CREATE TABLE crm.wallets (
    account_id               uuid PRIMARY KEY REFERENCES crm.accounts (id),
    currency                 text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    balance_cents            bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
    lifetime_earnings_cents  bigint NOT NULL DEFAULT 0 CHECK (lifetime_earnings_cents >= 0),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- the ledger: one row per change of a balance, never updated or deleted;
-- a commission's source (attribution or conversion) credits at most once
CREATE TABLE crm.wallet_transactions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id           uuid NOT NULL REFERENCES crm.wallets (account_id),
    kind                 text NOT NULL CHECK (kind IN ('commission_install',
                             'commission_conversion', 'payout', 'adjustment')),
    amount_cents         bigint NOT NULL CHECK (amount_cents <> 0),
    balance_after_cents  bigint NOT NULL CHECK (balance_after_cents >= 0),
    reference            text NOT NULL DEFAULT '' CHECK (length(reference) <= 200),
    source_id            uuid,
    actor_id             uuid REFERENCES crm.accounts (id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind LIKE 'commission_%') = (source_id IS NOT NULL)),
    CHECK (kind NOT LIKE 'commission_%' OR amount_cents > 0),
    CHECK (kind <> 'payout' OR amount_cents < 0)
);

CREATE UNIQUE INDEX wallet_transactions_source ON crm.wallet_transactions (kind, source_id)
    WHERE source_id IS NOT NULL;
CREATE INDEX wallet_transactions_account ON crm.wallet_transactions (account_id, id DESC);

CREATE FUNCTION crm.append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER wallet_transactions_append_only
    BEFORE UPDATE OR DELETE ON crm.wallet_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION crm.append_only();
CREATE TRIGGER wallet_transactions_no_truncate
    BEFORE TRUNCATE ON crm.wallet_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION crm.append_only();

-- The first answer to a request sent with an Idempotency-Key, replayed to
-- its repeats.  scope is the caller; request_hash is SHA-256 over the
-- method, the path and the body.
CREATE TABLE crm.idempotency_keys (
    scope          text NOT NULL,
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash   bytea NOT NULL,
    status         integer NOT NULL,
    response_body  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created ON crm.idempotency_keys (created_at);
