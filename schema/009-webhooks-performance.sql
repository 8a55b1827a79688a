-- Webhook events from configured senders, and the counters the
-- performance views read.

-- The outcome of the substage a lead is in (substages.json "outcome"),
-- written with the stage by the gateway, which knows the pipeline: NULL
-- for an open lead.  The history keeps the outcome each move entered.
ALTER TABLE crm.leads ADD COLUMN outcome text
    CHECK (outcome IN ('won', 'lost', 'churned'));
ALTER TABLE crm.lead_stage_events ADD COLUMN outcome text
    CHECK (outcome IN ('won', 'lost', 'churned'));

-- Leads already in a substage that ends a deal, as the shipped pipeline
-- marks them (closed/won won, closed/lost and closed/no_decision lost,
-- closed/churned churned); a pipeline of one's own marks its leads as
-- they next move
UPDATE crm.leads
   SET outcome = CASE substage WHEN 'won' THEN 'won'
                               WHEN 'churned' THEN 'churned'
                               ELSE 'lost' END
 WHERE stage = 'closed'
   AND substage IN ('won', 'lost', 'no_decision', 'churned');

-- a webhook event is matched to any account's live lead by shop domain,
-- then email, then phone
CREATE INDEX leads_shop ON crm.leads (shop_domain)
    WHERE deleted_at IS NULL AND shop_domain IS NOT NULL;
CREATE INDEX leads_email ON crm.leads (email)
    WHERE deleted_at IS NULL AND email IS NOT NULL;
CREATE INDEX leads_phone ON crm.leads (phone)
    WHERE deleted_at IS NULL AND phone IS NOT NULL;

-- One row per event a source sent, once: the source's event id is unique
-- per source, so a repeat inserts nothing.  Identifiers are stored
-- normalised; one that did not validate is kept as sent in "invalid"
-- ({"phone": "12"}), never guessed.
CREATE TABLE crm.webhook_events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source           text NOT NULL CHECK (source ~ '^[a-z0-9_-]{1,32}$'),
    source_event_id  text NOT NULL CHECK (length(source_event_id) BETWEEN 1 AND 255),
    type             text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
    status           text NOT NULL CHECK (status IN ('attributed', 'unmatched')),
    lead_id          uuid REFERENCES crm.leads (id),
    email            text,
    phone            text,
    shop_domain      text,
    external_id      text,
    invalid          jsonb NOT NULL DEFAULT '{}',
    action           text CHECK (action IN ('conversion', 'churned')),
    conversion_id    uuid REFERENCES crm.conversions (id),
    detail           text,
    payload          jsonb NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_event_id),
    CHECK ((status = 'attributed') = (lead_id IS NOT NULL))
);

CREATE INDEX webhook_events_received ON crm.webhook_events (received_at DESC, id DESC);
CREATE INDEX webhook_events_lead ON crm.webhook_events (lead_id, received_at, id)
    WHERE lead_id IS NOT NULL;


-- Performance counters.  Every event that counts appends a delta row in
-- its own transaction (the triggers below); nothing else is locked, so
-- concurrent events of one account never wait on each other.  A worker
-- folds the deltas into the rollups about once a second
-- (crm.stats_compact); a reader adds the rollups and the deltas not yet
-- folded in one statement, so its figures are exact at its snapshot.
--
-- A delta with a day counts events of that UTC day (account_daily, and
-- link_daily when it names a link); one with a stage changes the
-- account's current leads of that stage and currency (account_leads).  A
-- lead's creation is both, in one row.
CREATE TABLE crm.stat_deltas (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id        uuid NOT NULL,
    link_id           text,
    day               date,
    stage             text,
    currency          text,
    leads             bigint NOT NULL DEFAULT 0,
    score_sum         bigint NOT NULL DEFAULT 0,
    open_value_cents  bigint NOT NULL DEFAULT 0,
    leads_created     bigint NOT NULL DEFAULT 0,
    won               bigint NOT NULL DEFAULT 0,
    lost              bigint NOT NULL DEFAULT 0,
    churned           bigint NOT NULL DEFAULT 0,
    clicks            bigint NOT NULL DEFAULT 0,
    installs          bigint NOT NULL DEFAULT 0,
    conversions       bigint NOT NULL DEFAULT 0,
    commission_cents  bigint NOT NULL DEFAULT 0,
    CHECK (day IS NOT NULL OR stage IS NOT NULL)
);

CREATE INDEX stat_deltas_account ON crm.stat_deltas (account_id, day);

CREATE TABLE crm.account_daily (
    account_id        uuid NOT NULL,
    day               date NOT NULL,
    leads_created     bigint NOT NULL DEFAULT 0,
    won               bigint NOT NULL DEFAULT 0,
    lost              bigint NOT NULL DEFAULT 0,
    churned           bigint NOT NULL DEFAULT 0,
    clicks            bigint NOT NULL DEFAULT 0,
    installs          bigint NOT NULL DEFAULT 0,
    conversions       bigint NOT NULL DEFAULT 0,
    commission_cents  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
);

-- the leaderboard reads every account's days of a range
CREATE INDEX account_daily_day ON crm.account_daily (day, account_id);

CREATE TABLE crm.link_daily (
    link_id           text COLLATE "C" NOT NULL,
    day               date NOT NULL,
    clicks            bigint NOT NULL DEFAULT 0,
    installs          bigint NOT NULL DEFAULT 0,
    conversions       bigint NOT NULL DEFAULT 0,
    commission_cents  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (link_id, day)
);

-- an account's live leads now: how many per stage and currency, the sum
-- of their scores, and the value of those still open (no outcome)
CREATE TABLE crm.account_leads (
    account_id        uuid NOT NULL,
    stage             text NOT NULL,
    currency          text NOT NULL,
    leads             bigint NOT NULL DEFAULT 0,
    score_sum         bigint NOT NULL DEFAULT 0,
    open_value_cents  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, stage, currency)
);


CREATE FUNCTION crm.utc_day(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE AS $$ SELECT (t AT TIME ZONE 'UTC')::date $$;

-- a lead created or changed: its place in the current counts, its
-- creation's day, and an outcome it entered; one row for a creation or a
-- move within a stage, two for a move between stages (out of one, into
-- the other)
CREATE FUNCTION crm.stats_lead() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    live     boolean := NEW.deleted_at IS NULL;
    entered  boolean := NEW.outcome IS NOT NULL
                        AND (TG_OP = 'INSERT'
                             OR NEW.outcome IS DISTINCT FROM OLD.outcome);
    day      date;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL THEN
        INSERT INTO crm.stat_deltas (account_id, stage, currency, leads,
                                     score_sum, open_value_cents)
        VALUES (OLD.owner_id, OLD.stage, OLD.currency, -1, -OLD.score,
                CASE WHEN OLD.outcome IS NULL THEN -OLD.value_cents ELSE 0 END);
    END IF;

    IF TG_OP = 'INSERT' THEN
        day := crm.utc_day(NEW.created_at);
    ELSIF entered THEN
        day := crm.utc_day(NEW.updated_at);
    END IF;

    IF live OR day IS NOT NULL THEN
        INSERT INTO crm.stat_deltas (account_id, day, stage, currency, leads,
                                     score_sum, open_value_cents,
                                     leads_created, won, lost, churned)
        VALUES (NEW.owner_id, day,
                CASE WHEN live THEN NEW.stage END,
                CASE WHEN live THEN NEW.currency END,
                live::int,
                CASE WHEN live THEN NEW.score ELSE 0 END,
                CASE WHEN live AND NEW.outcome IS NULL
                     THEN NEW.value_cents ELSE 0 END,
                (TG_OP = 'INSERT')::int,
                (entered AND NEW.outcome = 'won')::int,
                (entered AND NEW.outcome = 'lost')::int,
                (entered AND NEW.outcome = 'churned')::int);
    END IF;

    RETURN NULL;
END
$$;

CREATE TRIGGER leads_stats_insert AFTER INSERT ON crm.leads
    FOR EACH ROW EXECUTE FUNCTION crm.stats_lead();

-- an edit of a name or a note counts nothing and costs no delta
CREATE TRIGGER leads_stats_update AFTER UPDATE ON crm.leads
    FOR EACH ROW
    WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
          OR OLD.stage IS DISTINCT FROM NEW.stage
          OR OLD.score IS DISTINCT FROM NEW.score
          OR OLD.value_cents IS DISTINCT FROM NEW.value_cents
          OR OLD.currency IS DISTINCT FROM NEW.currency
          OR OLD.outcome IS DISTINCT FROM NEW.outcome
          OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION crm.stats_lead();

-- clicks, per batch: those that count (no HEAD, no flagged bot) by link
-- and UTC day, whichever way the batch was written (COPY, or a replay's
-- INSERT, whose transition table holds only the rows it inserted)
CREATE FUNCTION crm.stats_clicks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crm.stat_deltas (account_id, link_id, day, clicks)
    SELECT l.owner_id, c.link_id, crm.utc_day(c.clicked_at), count(*)
      FROM new_clicks c JOIN crm.affiliate_links l ON l.id = c.link_id
     WHERE NOT c.is_head AND NOT c.is_bot
     GROUP BY 1, 2, 3;

    RETURN NULL;
END
$$;

CREATE TRIGGER clicks_stats AFTER INSERT ON crm.clicks
    REFERENCING NEW TABLE AS new_clicks
    FOR EACH STATEMENT EXECUTE FUNCTION crm.stats_clicks();

CREATE FUNCTION crm.stats_attribution() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crm.stat_deltas (account_id, link_id, day, installs)
    VALUES (NEW.owner_id, NEW.link_id, crm.utc_day(NEW.created_at), 1);

    RETURN NULL;
END
$$;

CREATE TRIGGER attributions_stats AFTER INSERT ON crm.attributions
    FOR EACH ROW EXECUTE FUNCTION crm.stats_attribution();

CREATE FUNCTION crm.stats_conversion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crm.stat_deltas (account_id, link_id, day, conversions)
    VALUES (NEW.owner_id, NEW.link_id, crm.utc_day(NEW.created_at), 1);

    RETURN NULL;
END
$$;

CREATE TRIGGER conversions_stats AFTER INSERT ON crm.conversions
    FOR EACH ROW EXECUTE FUNCTION crm.stats_conversion();

-- a commission credited, on the day of its ledger row, to the link that
-- earned it (the attribution's or the conversion's)
CREATE FUNCTION crm.stats_commission() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    link  text;
BEGIN
    IF NEW.kind = 'commission_install' THEN
        SELECT link_id INTO link FROM crm.attributions WHERE id = NEW.source_id;
    ELSE
        SELECT link_id INTO link FROM crm.conversions WHERE id = NEW.source_id;
    END IF;

    INSERT INTO crm.stat_deltas (account_id, link_id, day, commission_cents)
    VALUES (NEW.account_id, link, crm.utc_day(NEW.created_at),
            NEW.amount_cents);

    RETURN NULL;
END
$$;

CREATE TRIGGER wallet_transactions_stats AFTER INSERT ON crm.wallet_transactions
    FOR EACH ROW WHEN (NEW.kind LIKE 'commission_%')
    EXECUTE FUNCTION crm.stats_commission();

-- Folds up to max_rows of the oldest deltas into the rollups, in one
-- transaction, and answers how many; 0 at once when another session is
-- folding (one folder at a time, on any host, so the rollups' rows are
-- only ever locked here, in key order).
CREATE FUNCTION crm.stats_compact(max_rows integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n  bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('crm.stats_compact')) THEN
        RETURN 0;
    END IF;

    WITH d AS (
        DELETE FROM crm.stat_deltas
         WHERE id IN (SELECT id FROM crm.stat_deltas ORDER BY id
                      LIMIT max_rows)
        RETURNING *),
    a AS (
        INSERT INTO crm.account_daily AS r (account_id, day, leads_created,
            won, lost, churned, clicks, installs, conversions,
            commission_cents)
        SELECT account_id, day, sum(leads_created), sum(won), sum(lost),
               sum(churned), sum(clicks), sum(installs), sum(conversions),
               sum(commission_cents)
          FROM d WHERE day IS NOT NULL
         GROUP BY account_id, day ORDER BY account_id, day
        ON CONFLICT (account_id, day) DO UPDATE SET
            leads_created = r.leads_created + EXCLUDED.leads_created,
            won = r.won + EXCLUDED.won,
            lost = r.lost + EXCLUDED.lost,
            churned = r.churned + EXCLUDED.churned,
            clicks = r.clicks + EXCLUDED.clicks,
            installs = r.installs + EXCLUDED.installs,
            conversions = r.conversions + EXCLUDED.conversions,
            commission_cents = r.commission_cents + EXCLUDED.commission_cents),
    l AS (
        INSERT INTO crm.link_daily AS r (link_id, day, clicks, installs,
            conversions, commission_cents)
        SELECT link_id, day, sum(clicks), sum(installs), sum(conversions),
               sum(commission_cents)
          FROM d WHERE day IS NOT NULL AND link_id IS NOT NULL
         GROUP BY link_id, day ORDER BY link_id, day
        ON CONFLICT (link_id, day) DO UPDATE SET
            clicks = r.clicks + EXCLUDED.clicks,
            installs = r.installs + EXCLUDED.installs,
            conversions = r.conversions + EXCLUDED.conversions,
            commission_cents = r.commission_cents + EXCLUDED.commission_cents),
    s AS (
        INSERT INTO crm.account_leads AS r (account_id, stage, currency,
            leads, score_sum, open_value_cents)
        SELECT account_id, stage, currency, sum(leads), sum(score_sum),
               sum(open_value_cents)
          FROM d WHERE stage IS NOT NULL
         GROUP BY account_id, stage, currency
         ORDER BY account_id, stage, currency
        ON CONFLICT (account_id, stage, currency) DO UPDATE SET
            leads = r.leads + EXCLUDED.leads,
            score_sum = r.score_sum + EXCLUDED.score_sum,
            open_value_cents = r.open_value_cents + EXCLUDED.open_value_cents)
    SELECT count(*) INTO n FROM d;

    RETURN n;
END
$$;

-- The counters of what existed before this migration, as if each event
-- had counted when it happened; won, lost and churned are not known for
-- leads moved before outcomes were recorded.
INSERT INTO crm.stat_deltas (account_id, stage, currency, leads, score_sum,
                             open_value_cents)
SELECT owner_id, stage, currency, count(*), sum(score),
       coalesce(sum(value_cents) FILTER (WHERE outcome IS NULL), 0)
  FROM crm.leads WHERE deleted_at IS NULL
 GROUP BY owner_id, stage, currency;

INSERT INTO crm.stat_deltas (account_id, day, leads_created)
SELECT owner_id, crm.utc_day(created_at), count(*)
  FROM crm.leads GROUP BY 1, 2;

INSERT INTO crm.stat_deltas (account_id, link_id, day, clicks)
SELECT l.owner_id, c.link_id, crm.utc_day(c.clicked_at), count(*)
  FROM crm.clicks c JOIN crm.affiliate_links l ON l.id = c.link_id
 WHERE NOT c.is_head AND NOT c.is_bot
 GROUP BY 1, 2, 3;

INSERT INTO crm.stat_deltas (account_id, link_id, day, installs)
SELECT owner_id, link_id, crm.utc_day(created_at), count(*)
  FROM crm.attributions GROUP BY 1, 2, 3;

INSERT INTO crm.stat_deltas (account_id, link_id, day, conversions)
SELECT owner_id, link_id, crm.utc_day(created_at), count(*)
  FROM crm.conversions GROUP BY 1, 2, 3;

INSERT INTO crm.stat_deltas (account_id, link_id, day, commission_cents)
SELECT w.account_id, coalesce(a.link_id, c.link_id), crm.utc_day(w.created_at),
       sum(w.amount_cents)
  FROM crm.wallet_transactions w
  LEFT JOIN crm.attributions a
         ON w.kind = 'commission_install' AND a.id = w.source_id
  LEFT JOIN crm.conversions c
         ON w.kind = 'commission_conversion' AND c.id = w.source_id
 WHERE w.kind LIKE 'commission_%'
 GROUP BY 1, 2, 3;
