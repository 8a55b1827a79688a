-- The CRM sync queue: every lead event, per connected integration of the
-- lead's owner, written by triggers in the transaction of the change (a
-- rolled-back change syncs nothing; a committed one is never missed).
--
-- crm.sync_jobs holds the events in order; crm.sync_queue has one row per
-- integration and lead with work to do, which the gateway's workers claim
-- with FOR UPDATE SKIP LOCKED and a lease: one lead's jobs are sent by one
-- worker at a time, in order, so several workers and several hosts share
-- the queue without sending a lead's events out of order.

ALTER TABLE crm.sync_jobs
    ADD COLUMN lead_id      uuid NOT NULL,
    ADD COLUMN event_id     uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN event        text NOT NULL
        CHECK (event IN ('created', 'updated', 'deleted', 'stage_changed',
                         'install', 'conversion')),
    ADD COLUMN contact      jsonb NOT NULL,
    ADD COLUMN value_cents  bigint,
    ADD COLUMN currency     text,
    ADD COLUMN event_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0,
    ADD COLUMN next_at      timestamptz,
    ADD COLUMN last_error   text,
    ADD COLUMN http_status  integer,
    ADD COLUMN finished_at  timestamptz;

-- a lead's jobs still to send, oldest first
CREATE INDEX sync_jobs_waiting ON crm.sync_jobs (account_id, crm_type, lead_id, id)
    WHERE state IN ('pending', 'failed');

-- the status endpoint's last_sync_at and counts come from here and from
-- the integration row, never from the log
ALTER TABLE crm.integrations
    ADD COLUMN paused_until timestamptz;

-- One row per integration and lead with jobs waiting.  seq moves with
-- every job added, so a worker that finished what it claimed removes the
-- row only when nothing came in meanwhile.
CREATE TABLE crm.sync_queue (
    account_id   uuid NOT NULL,
    crm_type     text NOT NULL,
    lead_id      uuid NOT NULL,
    due_at       timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz,
    lease_token  uuid,
    seq          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, crm_type, lead_id)
);

-- a claim reads each integration's first due rows, and counts the leases
-- it holds (a handful of rows: only leased ones are in that index)
CREATE INDEX sync_queue_due ON crm.sync_queue (account_id, crm_type, due_at);
CREATE INDEX sync_queue_leased ON crm.sync_queue (account_id, crm_type)
    WHERE lease_until IS NOT NULL;

-- One job per integration of the lead's owner that is not disconnected
-- (one in error keeps its jobs until the next connect), with the lead as
-- it is now.  PL/pgSQL, so that each connection plans it once; and no
-- foreign key from the jobs, the queue or the log to the integration or
-- the account (neither is ever deleted): every write of one account would
-- take a key share lock on the same row, and concurrent writers would
-- share it through a multixact each time.
ALTER TABLE crm.sync_jobs
    DROP CONSTRAINT sync_jobs_account_id_crm_type_fkey;
ALTER TABLE crm.sync_log
    DROP CONSTRAINT sync_log_account_id_fkey;

CREATE FUNCTION crm.sync_enqueue(p_lead crm.leads, p_event text,
    p_value bigint, p_currency text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i  record;
BEGIN
    FOR i IN SELECT crm_type FROM crm.integrations
              WHERE account_id = p_lead.owner_id AND status <> 'disconnected'
    LOOP
        INSERT INTO crm.sync_jobs (account_id, crm_type, state, lead_id,
                                   event, contact, value_cents, currency)
        VALUES (p_lead.owner_id, i.crm_type, 'pending', p_lead.id, p_event,
                jsonb_build_object('lead_id', p_lead.id, 'name', p_lead.name,
                    'email', p_lead.email, 'phone', p_lead.phone,
                    'company', p_lead.company,
                    'shop_domain', p_lead.shop_domain,
                    'source', p_lead.source, 'stage', p_lead.stage,
                    'substage', p_lead.substage, 'score', p_lead.score),
                p_value, p_currency);

        INSERT INTO crm.sync_queue AS q (account_id, crm_type, lead_id)
        VALUES (p_lead.owner_id, i.crm_type, p_lead.id)
        ON CONFLICT (account_id, crm_type, lead_id) DO UPDATE
           SET seq = q.seq + 1;
    END LOOP;
END
$$;

CREATE FUNCTION crm.leads_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM crm.sync_enqueue(NEW, 'created', NULL, NULL);
    ELSIF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        PERFORM crm.sync_enqueue(NEW, 'deleted', NULL, NULL);
    ELSIF (OLD.stage, OLD.substage) IS DISTINCT FROM (NEW.stage, NEW.substage)
    THEN
        PERFORM crm.sync_enqueue(NEW, 'stage_changed', NULL, NULL);
    ELSIF (OLD.name, OLD.email, OLD.phone, OLD.company, OLD.shop_domain,
           OLD.source, OLD.score)
          IS DISTINCT FROM
          (NEW.name, NEW.email, NEW.phone, NEW.company, NEW.shop_domain,
           NEW.source, NEW.score)
    THEN
        PERFORM crm.sync_enqueue(NEW, 'updated', NULL, NULL);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER leads_sync AFTER INSERT OR UPDATE ON crm.leads
    FOR EACH ROW EXECUTE FUNCTION crm.leads_sync();

CREATE FUNCTION crm.attributions_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.sync_enqueue(l, 'install', NULL, NULL)
       FROM crm.leads l WHERE l.id = NEW.lead_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER attributions_sync AFTER INSERT ON crm.attributions
    FOR EACH ROW EXECUTE FUNCTION crm.attributions_sync();

CREATE FUNCTION crm.conversions_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.sync_enqueue(l, 'conversion', NEW.amount_cents, NEW.currency)
       FROM crm.attributions a JOIN crm.leads l ON l.id = a.lead_id
      WHERE a.id = NEW.attribution_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversions_sync AFTER INSERT ON crm.conversions
    FOR EACH ROW EXECUTE FUNCTION crm.conversions_sync();

-- What a worker did with what it claimed (p_token's lease of one
-- integration and lead), in one transaction: each job's outcome and its
-- sync log row, the integration's state, and the queue row, released.
--
-- p_done: {"jobs": [{"id", "outcome": ok|failed|dead|held, "log_outcome":
--   failed|timeout, "operation", "http_status", "duration_ms", "error",
--   "next_ms"}], "refused": text, "paused_ms": int}
-- A job not listed waits as it was (one before it did not go ok); one
-- "held" too, with its log row (its credentials were refused).  "refused"
-- puts the integration in error; "paused_ms" holds all its jobs (a
-- provider's Retry-After).  last_sync_at moves at most once a second, so
-- that a busy integration's row is not rewritten for every lead.
CREATE FUNCTION crm.sync_finish(p_account uuid, p_type text, p_lead uuid,
    p_token uuid, p_seq bigint, p_done jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    j        jsonb;
    synced   boolean := false;
BEGIN
    -- a lease that ran out and went to another worker: its result is not ours
    PERFORM 1 FROM crm.sync_queue
      WHERE account_id = p_account AND crm_type = p_type AND lead_id = p_lead
        AND lease_token = p_token
      FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    FOR j IN SELECT * FROM jsonb_array_elements(p_done -> 'jobs') LOOP
        CONTINUE WHEN j ->> 'outcome' = 'wait';

        -- held: the credentials were refused; the job waits as it was
        IF j ->> 'outcome' <> 'held' THEN
            UPDATE crm.sync_jobs
               SET state = j ->> 'outcome',
                   attempts = attempts + 1,
                   http_status = (j ->> 'http_status')::integer,
                   last_error = j ->> 'error',
                   next_at = CASE WHEN j ->> 'outcome' = 'failed'
                                  THEN now() + (j ->> 'next_ms')::bigint
                                               * interval '1 ms' END,
                   finished_at = CASE WHEN j ->> 'outcome' IN ('ok', 'dead')
                                      THEN now() END
             WHERE id = (j ->> 'id')::bigint
               AND state IN ('pending', 'failed');

            CONTINUE WHEN NOT FOUND;
        END IF;

        INSERT INTO crm.sync_log (account_id, crm_type, operation, entity,
                                  entity_id, outcome, http_status,
                                  duration_ms, attempt, error)
        SELECT p_account, p_type, j ->> 'operation', 'lead', p_lead::text,
               CASE WHEN j ->> 'outcome' = 'ok' THEN 'ok'
                    ELSE coalesce(j ->> 'log_outcome', 'refused') END,
               (j ->> 'http_status')::integer,
               greatest((j ->> 'duration_ms')::integer, 0),
               CASE WHEN j ->> 'outcome' = 'held' THEN attempts + 1
                    ELSE attempts END,
               j ->> 'error'
          FROM crm.sync_jobs WHERE id = (j ->> 'id')::bigint;

        synced := synced OR j ->> 'outcome' = 'ok';
    END LOOP;

    UPDATE crm.integrations
       SET last_sync_at = CASE WHEN synced THEN now() ELSE last_sync_at END,
           status = CASE WHEN p_done ? 'refused' AND status = 'connected'
                         THEN 'error' ELSE status END,
           last_error = CASE WHEN p_done ? 'refused'
                             THEN p_done ->> 'refused' ELSE last_error END,
           paused_until = CASE WHEN p_done ? 'paused_ms'
                               THEN now() + (p_done ->> 'paused_ms')::bigint
                                            * interval '1 ms'
                               ELSE paused_until END,
           updated_at = now()
     WHERE account_id = p_account AND crm_type = p_type
       AND ((synced AND (last_sync_at IS NULL
                         OR last_sync_at < now() - interval '1 second'))
            OR p_done ? 'refused' OR p_done ? 'paused_ms');

    -- nothing left and nothing new: the row goes; else it waits for its
    -- first job's time
    DELETE FROM crm.sync_queue
     WHERE account_id = p_account AND crm_type = p_type AND lead_id = p_lead
       AND seq = p_seq
       AND NOT EXISTS (SELECT 1 FROM crm.sync_jobs
                        WHERE account_id = p_account AND crm_type = p_type
                          AND lead_id = p_lead
                          AND state IN ('pending', 'failed'));

    IF NOT FOUND THEN
        UPDATE crm.sync_queue
           SET lease_until = NULL, lease_token = NULL,
               due_at = greatest(now(),
                   coalesce((SELECT min(next_at) FROM crm.sync_jobs
                              WHERE account_id = p_account
                                AND crm_type = p_type AND lead_id = p_lead
                                AND state = 'failed'), now()))
         WHERE account_id = p_account AND crm_type = p_type
           AND lead_id = p_lead;
    END IF;
END
$$;
