-- Retention of the raw clicks: crm.clicks is partitioned by month
-- (clicks_YYYYMM, made by crm.click_partition_ensure), and a month is
-- dropped whole, never row by row.  crm.clicks_retain(n) keeps the
-- current month and the n months before it, detaches and drops every
-- older month, and returns the names it dropped.  Only raw click rows go:
-- the links' counters (crm.affiliate_link_stats) and the performance
-- rollups (crm.stat_deltas, crm.link_daily, crm.account_daily) were
-- counted in the transaction that wrote each click, and attributions and
-- conversions keep the click id they name as text.  Each detach waits for
-- the click flush under way and holds crm.clicks for milliseconds.
CREATE FUNCTION crm.clicks_retain(months integer) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    keep_from  date;
    part       text;
BEGIN
    IF months IS NULL OR months < 1 THEN
        RAISE EXCEPTION 'crm.clicks_retain: months must be at least 1, not %',
            months USING ERRCODE = '22023';
    END IF;

    keep_from := date_trunc('month', now() AT TIME ZONE 'UTC')::date
                 - make_interval(months => months);

    FOR part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'crm.clicks'::regclass
           AND c.relname ~ '^clicks_[0-9]{6}$'
           AND to_date(substr(c.relname, 8), 'YYYYMM') < keep_from
         ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE crm.clicks DETACH PARTITION crm.%I', part);
        EXECUTE format('DROP TABLE crm.%I', part);
        RETURN NEXT part;
    END LOOP;
END
$$;
