-- Snapshot pages read out-of-line values through scans of kv's TOAST index
-- that carry on from one value to the next in either direction
-- (kv_values.c).  Every layout of value ids a rotation can leave gives the
-- same pages as reading the state by hand: values written in key order
-- upwards and downwards, in random order, and the current values of older
-- rotations interleaved with newer ones at spacings below and above what a
-- scan carries on over; with deletions, inline values and compressed ones.
SET synclog.retention = 0;
CREATE FUNCTION pg_temp.rv(n int, seed int) RETURNS bytea LANGUAGE sql AS
$$ SELECT decode(string_agg(md5((seed * 100003 + i)::text), ''), 'hex') FROM generate_series(1, n / 16) i $$;

-- A snapshot read page by page (page rows per call), as one digest.
CREATE FUNCTION pg_temp.paged(doc text, lg text, page int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE after bytea := NULL; n int; acc text := ''; r record;
BEGIN
	LOOP
		n := 0;
		FOR r IN SELECT key, value FROM synclog.snapshot(doc, lg, after, page) LOOP
			acc := md5(acc || md5(r.key) || md5(r.value)); after := r.key; n := n + 1;
		END LOOP;
		EXIT WHEN n < page;
	END LOOP;
	RETURN acc;
END $$;
-- The same state read from synclog.kv by hand.
CREATE FUNCTION pg_temp.direct(doc text, lg text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE acc text := ''; r record;
BEGIN
	FOR r IN SELECT key, value FROM (SELECT DISTINCT ON (key) key, kind, value FROM synclog.kv
			   WHERE doc_id = (SELECT doc_id FROM synclog.doc x WHERE x.name = direct.doc) AND ns = 1
				 AND lsn <= (SELECT base_lsn FROM synclog.log y WHERE y.log_id = direct.lg)
			   ORDER BY key, lsn DESC) v WHERE kind <> 'd' ORDER BY key LOOP
		acc := md5(acc || md5(r.key) || md5(r.value));
	END LOOP;
	RETURN acc;
END $$;

DO $$
DECLARE r int; s int;
BEGIN
	PERFORM synclog.create_doc(d) FROM unnest(ARRAY['sl_up', 'sl_down', 'sl_rnd', 'sl_mix']) d;
	-- one append per key, keys in descending order (value ids fall in key order)
	FOR r IN REVERSE 299..0 LOOP
		PERFORM synclog.append('sl_up', ARRAY[int4send(r)], ARRAY[pg_temp.rv(2000 + (r % 7) * 900, r)]);
	END LOOP;
	-- ascending, with compressible and inline values among them
	FOR r IN 0..299 LOOP
		PERFORM synclog.append('sl_down', ARRAY[int4send(r)], ARRAY[CASE
			WHEN r % 11 = 0 THEN decode(repeat('00', 9000), 'hex') || pg_temp.rv(512, r)
			WHEN r % 13 = 0 THEN '\x2a'::bytea
			ELSE pg_temp.rv(2000 + (r % 5) * 1300, r) END]);
	END LOOP;
	-- keys in no order
	FOR r IN 0..299 LOOP
		PERFORM synclog.append('sl_rnd', ARRAY[int4send((r * 7919) % 1000)], ARRAY[pg_temp.rv(4000, r)]);
	END LOOP;
	PERFORM synclog.compact(d) FROM unnest(ARRAY['sl_up', 'sl_down', 'sl_rnd']) d;
	-- 600 keys of 9 kB (five chunks each); then rotations that rewrite all
	-- keys but every 3rd, every 10th and every 40th, in turn, and delete some
	FOR r IN 0..599 LOOP
		PERFORM synclog.append('sl_mix', ARRAY[int4send(r)], ARRAY[pg_temp.rv(9000, r)]);
	END LOOP;
	PERFORM synclog.compact('sl_mix');
	FOREACH s IN ARRAY ARRAY[3, 10, 40] LOOP
		FOR r IN REVERSE 599..0 LOOP
			IF r % s <> 0 THEN
				PERFORM synclog.append('sl_mix', ARRAY[int4send(r)],
					ARRAY[CASE WHEN r % 37 = 0 THEN NULL ELSE pg_temp.rv(6000, r + s) END]);
			END IF;
		END LOOP;
		PERFORM synclog.compact('sl_mix');
	END LOOP;
END $$;
SELECT synclog.gc() >= 0 AS collected;

SELECT d, p, pg_temp.paged(d, c.log_id, p) = pg_temp.direct(d, c.log_id) AS same
  FROM unnest(ARRAY['sl_up', 'sl_down', 'sl_rnd', 'sl_mix']) d,
	   LATERAL synclog.current_log(d) c, unnest(ARRAY[1, 7, 100, 1000]) p
 ORDER BY d, p;
-- Every document's snapshot hash agrees with its pages too.
SELECT d, c.snapshot_hash = synclog.recompute_hash(d, c.log_id) AS hash_ok
  FROM unnest(ARRAY['sl_up', 'sl_down', 'sl_rnd', 'sl_mix']) d, LATERAL synclog.current_log(d) c
 ORDER BY d;
SELECT count(synclog.drop_doc(d)) FROM unnest(ARRAY['sl_up', 'sl_down', 'sl_rnd', 'sl_mix']) d;
RESET synclog.retention;
