-- An install callback in one round trip: the whole of it, from the link's
-- terms to the commission, is one statement, so one implicit transaction
-- committed in the same exchange (it was eight round trips: a look, BEGIN,
-- the shop's lock, the lead, its insert, the attribution, the credit,
-- COMMIT).  Each statement in the function sees what committed before it
-- started, so the lead is looked for after the shop's lock is held.

-- A commission: the wallet (made in the link's currency with the first
-- one), its ledger row and the link's counters.  False, and nothing
-- written, when the wallet holds another currency (the operator changed
-- crm_currency): the caller refuses, so the sender retries.
CREATE FUNCTION crm.credit(p_account uuid, p_currency text, p_kind text,
    p_amount bigint, p_source uuid, p_reference text, p_link text,
    p_installs integer, p_conversions integer)
RETURNS boolean LANGUAGE sql AS $$
    WITH w AS (
        INSERT INTO crm.wallets AS cur (account_id, currency, balance_cents,
                                        lifetime_earnings_cents)
        VALUES (p_account, p_currency, p_amount, p_amount)
        ON CONFLICT (account_id) DO UPDATE
           SET balance_cents = cur.balance_cents + excluded.balance_cents,
               lifetime_earnings_cents = cur.lifetime_earnings_cents
                                         + excluded.lifetime_earnings_cents,
               updated_at = now()
         WHERE cur.currency = excluded.currency
        RETURNING account_id, balance_cents),
    t AS (
        INSERT INTO crm.wallet_transactions (account_id, kind, amount_cents,
                                             balance_after_cents, reference,
                                             source_id)
        SELECT account_id, p_kind, p_amount, balance_cents,
               left(p_reference, 200), p_source
          FROM w
        RETURNING id),
    counted AS (
        UPDATE crm.affiliate_link_stats
           SET installs = installs + p_installs,
               conversions = conversions + p_conversions,
               earnings_cents = earnings_cents + p_amount
         WHERE link_id = p_link AND EXISTS (SELECT 1 FROM t))
    SELECT EXISTS (SELECT 1 FROM t)
$$;

-- The install of shop p_shop through link p_link.  A repeat (the link
-- already has the shop, or the event id is known) changes nothing and
-- answers the first attribution with r_created false.  Otherwise, under
-- the lock of the owner's shop, the owner's oldest live lead for the shop
-- (or a new one, source affiliate, with its first history row), the
-- attribution, and the commission, or only the count when the link does
-- not earn (its owner deactivated, or an administrator's block).
-- Refusals, as SQLSTATEs the gateway maps: CRML1 no such link; CRML2 a
-- concurrent repeat got there first (all is undone: read the first);
-- CRML3 the owner's wallet holds another currency.
CREATE FUNCTION crm.install(p_link text, p_shop text, p_click text,
    p_event text, p_name text, p_email text, p_stage text, p_substage text,
    p_score integer,
    OUT r_lead uuid, OUT r_attribution uuid, OUT r_created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    t  record;
BEGIN
    SELECT l.id, l.owner_id, l.install_cents, l.currency,
           o.is_active AND NOT l.admin_disabled AS earns
      INTO t
      FROM crm.affiliate_links l JOIN crm.accounts o ON o.id = l.owner_id
     WHERE l.id = p_link;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such link' USING ERRCODE = 'CRML1';
    END IF;

    SELECT a.id, a.lead_id INTO r_attribution, r_lead
      FROM crm.attributions a
     WHERE (a.link_id = p_link AND a.shop_domain = p_shop)
        OR a.event_id = p_event
     ORDER BY (a.event_id = p_event) IS TRUE DESC
     LIMIT 1;

    IF FOUND THEN
        r_created := false;
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock(hashtextextended(
                'crm.leads shop ' || t.owner_id::text || ' ' || p_shop, 0));

    SELECT id INTO r_lead FROM crm.leads
     WHERE owner_id = t.owner_id AND shop_domain = p_shop
       AND deleted_at IS NULL
     ORDER BY created_at, id
     LIMIT 1;

    IF NOT FOUND THEN
        INSERT INTO crm.leads (owner_id, name, email, shop_domain, source,
                               stage, substage, score, currency,
                               affiliate_link_id)
        VALUES (t.owner_id, p_name, p_email, p_shop, 'affiliate', p_stage,
                p_substage, p_score, t.currency, t.id)
        RETURNING id INTO r_lead;

        INSERT INTO crm.lead_stage_events (lead_id, to_stage, to_substage,
                                           score)
        VALUES (r_lead, p_stage, p_substage, p_score);
    END IF;

    INSERT INTO crm.attributions (link_id, owner_id, lead_id, shop_domain,
                                  click_id, event_id)
    VALUES (t.id, t.owner_id, r_lead, p_shop, p_click, p_event)
    ON CONFLICT DO NOTHING
    RETURNING id INTO r_attribution;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'a concurrent install got there first'
            USING ERRCODE = 'CRML2';
    END IF;

    IF t.earns AND t.install_cents > 0 THEN
        IF NOT crm.credit(t.owner_id, t.currency, 'commission_install',
                          t.install_cents, r_attribution, p_shop, t.id, 1, 0)
        THEN
            RAISE EXCEPTION 'the owner''s wallet holds another currency'
                USING ERRCODE = 'CRML3';
        END IF;
    ELSE
        UPDATE crm.affiliate_link_stats SET installs = installs + 1
         WHERE link_id = t.id;
    END IF;

    r_created := true;
END
$$;
