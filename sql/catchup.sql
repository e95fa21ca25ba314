-- Catching up and repairing by range (issue 11; PROTOCOL.md sections 6a
-- and 11a): range hashes kept by rotations sum to the snapshot hash and
-- equal a from-scratch computation per bucket; range pages of all buckets
-- are the snapshot; catch_up pages applied to a client-side fold (in SQL,
-- with the hash functions a client has) end at catch_up_target's hash from
-- every position, several rotations back and from the empty state, also
-- after gc; and every bad argument gets its SQLSTATE.

-- Client-side helpers ---------------------------------------------------------

-- The sum of hashes (hash_combine as an aggregate).
CREATE AGGREGATE pg_temp.hsum(bytea) (
	SFUNC = synclog.hash_combine, STYPE = bytea,
	INITCOND = '\x010000000000000000000000000000000000000000000000000000000000000000');
-- Little-endian i64 (watermarks: i64le seq || i64le lsn).
CREATE FUNCTION pg_temp.get_le64(b bytea, off int) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
	SELECT sum(get_byte(b, off + i)::numeric * 256::numeric ^ i)::bigint
	  FROM generate_series(0, 7) i $$;
CREATE FUNCTION pg_temp.le64(v bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT string_agg(substring(int8send(v) FROM 9 - i FOR 1), ''::bytea ORDER BY i)
	  FROM generate_series(1, 8) i $$;
-- The hash of one item, from its bytes alone.
CREATE FUNCTION pg_temp.item_hash(ns smallint, key bytea, value bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN ns = 1 THEN synclog.hash_add_data(synclog.empty_hash(), key, value)
		   ELSE synclog.hash_add_client(synclog.empty_hash(), convert_from(key, 'UTF8'),
										pg_temp.get_le64(value, 0), pg_temp.get_le64(value, 8)) END $$;

-- Replicas: r names one; (ns, key) -> value.
CREATE TEMP TABLE rep (r text, ns smallint, key bytea, value bytea NOT NULL,
	PRIMARY KEY (r, ns, key));
CREATE FUNCTION pg_temp.rep_hash(name text) RETURNS bytea
LANGUAGE sql AS $$
	SELECT pg_temp.hsum(pg_temp.item_hash(ns, key, value)) FROM rep WHERE r = name $$;
CREATE FUNCTION pg_temp.rep_put(name text, n smallint, k bytea, v bytea) RETURNS void
LANGUAGE sql AS $$
	DELETE FROM rep WHERE r = name AND ns = n AND key = k AND v IS NULL;
	INSERT INTO rep SELECT name, n, k, v WHERE v IS NOT NULL
	  ON CONFLICT (r, ns, key) DO UPDATE SET value = excluded.value $$;

-- A replica at a position of a log (its base when at is NULL), from range
-- pages of all buckets (page: rows per call).
CREATE FUNCTION pg_temp.load_range(name text, doc text, log text, page int,
	at bigint DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	an smallint; ak bytea; n int; pages int := 0; x record;
BEGIN
	DELETE FROM rep WHERE r = name;
	LOOP
		n := 0;
		FOR x IN SELECT * FROM synclog.range(doc, log, ARRAY(SELECT generate_series(0, 4095)),
											 an, ak, page, at) LOOP
			IF an IS NOT NULL AND (x.ns, x.key) <= (an, ak) THEN
				RAISE EXCEPTION 'range rows out of order';
			END IF;
			IF synclog.bucket(x.ns, x.key) <> x.bucket THEN
				RAISE EXCEPTION 'item in the wrong bucket';
			END IF;
			n := n + 1; an := x.ns; ak := x.key;
			INSERT INTO rep VALUES (name, x.ns, x.key, x.value);
		END LOOP;
		pages := pages + 1;
		EXIT WHEN n < page;
	END LOOP;
	RETURN pages;
END $$;

-- Replay a log's entries (after, upto] onto a replica, as a version 1 reader.
CREATE FUNCTION pg_temp.replay(name text, doc text, log text, after bigint, upto bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	e record; c record;
BEGIN
	FOR e IN SELECT * FROM synclog.read(doc, log, after, 100000, 2147483647)
			  WHERE kind = 'delta' AND lsn <= upto ORDER BY lsn LOOP
		FOR c IN SELECT * FROM synclog.decode_delta(e.delta) LOOP
			PERFORM pg_temp.rep_put(name, 1::smallint, c.key, c.value);
		END LOOP;
		IF e.client_id IS NOT NULL THEN
			PERFORM pg_temp.rep_put(name, 2::smallint, convert_to(e.client_id, 'UTF8'),
				CASE WHEN e.client_seq = -1 THEN NULL
					 ELSE pg_temp.le64(e.client_seq) || pg_temp.le64(e.lsn) END);
		END IF;
	END LOOP;
END $$;

-- Apply every catch_up page (page rows per call); returns pages and rows.
CREATE FUNCTION pg_temp.catch_up(name text, doc text, log text, pos bigint, tlog text,
	tlsn bigint, page int, OUT pages int, OUT rows int, OUT nulls int)
LANGUAGE plpgsql AS $$
DECLARE
	an smallint; ak bytea; n int; x record;
	ch bytea := CASE WHEN log IS NOT NULL THEN synclog.chain_at(doc, log, pos) END;
BEGIN
	pages := 0; rows := 0; nulls := 0;
	LOOP
		n := 0;
		FOR x IN SELECT * FROM synclog.catch_up(doc, log, pos, ch, tlog, tlsn, an, ak, page) LOOP
			IF an IS NOT NULL AND (x.ns, x.key) <= (an, ak) THEN
				RAISE EXCEPTION 'catch_up rows out of order';
			END IF;
			n := n + 1; an := x.ns; ak := x.key;
			rows := rows + 1;
			nulls := nulls + (x.value IS NULL)::int;
			PERFORM pg_temp.rep_put(name, x.ns, x.key, x.value);
		END LOOP;
		pages := pages + 1;
		EXIT WHEN n < page;
	END LOOP;
END $$;

-- Range hashes of a log against a from-scratch computation: their sum is
-- the snapshot hash; each equals the hash of its bucket's items read by
-- range; no bucket is missing or extra.
CREATE FUNCTION pg_temp.check_ranges(d text, l text,
	OUT buckets bigint, OUT sum_ok boolean, OUT per_bucket_ok boolean, OUT range_is_snapshot boolean)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_temp.load_range('chk', d, l, 1000);
	SELECT count(*), pg_temp.hsum(h.hash) = (SELECT snapshot_hash FROM synclog.log WHERE log_id = l)
	  INTO buckets, sum_ok FROM synclog.range_hashes(d, l) h;
	sum_ok := sum_ok AND pg_temp.rep_hash('chk') = synclog.recompute_hash(d, l);
	SELECT NOT EXISTS (
		SELECT 1 FROM synclog.range_hashes(d, l) h
		  FULL JOIN (SELECT synclog.bucket(ns, key) AS bucket, pg_temp.hsum(pg_temp.item_hash(ns, key, value)) AS hash
					   FROM rep WHERE r = 'chk' GROUP BY 1) s USING (bucket)
		 WHERE h.hash IS DISTINCT FROM s.hash) INTO per_bucket_ok;
	SELECT NOT EXISTS (
		(SELECT key, value FROM rep WHERE r = 'chk' AND ns = 1
		 EXCEPT SELECT key, value FROM synclog.snapshot(d, l, NULL, 2147483647))
		UNION ALL
		(SELECT key, value FROM synclog.snapshot(d, l, NULL, 2147483647)
		 EXCEPT SELECT key, value FROM rep WHERE r = 'chk' AND ns = 1))
	   AND (SELECT count(*) FROM rep WHERE r = 'chk' AND ns = 2)
		 = (SELECT count(*) FROM synclog.snapshot_clients(d, l) c
			  JOIN rep ON r = 'chk' AND ns = 2 AND key = convert_to(c.client_id, 'UTF8')
					  AND value = pg_temp.le64(c.client_seq) || pg_temp.le64(c.client_lsn))
	  INTO range_is_snapshot;
END $$;

-- Buckets -----------------------------------------------------------------------

-- PROTOCOL.md section 11a, test vectors: see also sql/vectors.sql.
SELECT ns, encode(key, 'escape') AS key, synclog.bucket(ns, key)
  FROM (VALUES (1::smallint, ''::bytea), (1::smallint, 'a'), (1::smallint, 'b'), (2::smallint, 'a'), (1::smallint, '\x00000001')) v(ns, key);

-- A document with history ---------------------------------------------------------

SET synclog.retention = 0;
SET synclog.retention_max = 0;
SELECT synclog.create_doc('cu') AS l1 \gset
-- log 1: 40 keys from w1, rewrites, one group of two entries
SELECT count(synclog.append('cu', ARRAY[convert_to('k' || lpad(i::text, 3, '0'), 'UTF8')],
	ARRAY[convert_to('v1-' || i, 'UTF8')], 'w1', i)) FROM generate_series(1, 40) i;
SELECT synclog.append('cu', ARRAY['k001', 'k002', 'x']::bytea[], ARRAY['v1b', NULL, 'x1']::bytea[], 'w2', 1);
SELECT synclog.append('cu', ARRAY['k003']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.compact('cu') AS l2 \gset
-- log 2: a key deleted and rewritten, a key added and deleted in the log
SELECT synclog.append('cu', ARRAY['k004', 'y']::bytea[], ARRAY[NULL, 'y1']::bytea[], 'w2', 2);
SELECT synclog.append('cu', ARRAY['k004', 'y']::bytea[], ARRAY['v2', NULL]::bytea[]);
SELECT count(synclog.append('cu', ARRAY[convert_to('k' || lpad(i::text, 3, '0'), 'UTF8')],
	ARRAY[convert_to('v2-' || i, 'UTF8')])) FROM generate_series(10, 19) i;
SELECT synclog.compact('cu') AS l3 \gset
-- log 3: a retire entry (w1's watermark goes), deletions of keys from log 1
SELECT synclog.forget_client('cu', 'w1') AS retire_lsn;
SELECT synclog.append('cu', ARRAY['k005', 'k006', 'z']::bytea[], ARRAY[NULL, NULL, 'z1']::bytea[], 'w3', 1);
SELECT synclog.compact('cu') AS l4 \gset
-- log 4 (active): more changes, not rotated
SELECT synclog.append('cu', ARRAY['k007', 'k010', 'x']::bytea[], ARRAY['v4', NULL, 'x4']::bytea[], 'w2', 3);
SELECT synclog.append('cu', ARRAY['k011']::bytea[], ARRAY[NULL]::bytea[], 'w1', 1);
SELECT log_id = :'l4' AS active_is_l4, lsn, snapshot_hash AS target_hash
  FROM synclog.catch_up_target('cu') \gset
SELECT :'active_is_l4' AS active_is_l4, :lsn AS target_lsn;

-- Range hashes of every log: sums, per bucket, pages of all buckets.
SELECT n, (pg_temp.check_ranges('cu', l)).*
  FROM (VALUES (2, :'l2'), (3, :'l3'), (4, :'l4')) v(n, l) ORDER BY n;
-- The check fails when a stored range hash is wrong (changed by hand, rolled back).
BEGIN;
UPDATE synclog.range_hash r
   SET hashes = overlay(r.hashes placing '\xff'::bytea from 4 for 1)
  FROM synclog.log l
 WHERE l.log_id = :'l4' AND r.doc_id = l.doc_id
   AND r.lsn = (SELECT max(w.lsn) FROM synclog.range_hash w
				 WHERE w.doc_id = l.doc_id AND w.lsn <= l.base_lsn);
SELECT (pg_temp.check_ranges('cu', :'l4')).*;
ROLLBACK;
-- The first log's base is the empty state: no bucket.
SELECT count(*) AS buckets FROM synclog.range_hashes('cu', :'l1');
-- Small pages give the same replica as one big page.
SELECT pg_temp.load_range('p1', 'cu', :'l3', 7) AS pages_of_7,
	   pg_temp.rep_hash('p1') = (SELECT snapshot_hash FROM synclog.log WHERE log_id = :'l3') AS equal;
-- One bucket, in two pages.
SELECT h.bucket AS b, (synclog.hash_info(h.hash)).item_count AS items
  FROM synclog.range_hashes('cu', :'l4') h ORDER BY 2 DESC, 1 LIMIT 1 \gset
SELECT count(*) = :items AS whole_bucket FROM synclog.range('cu', :'l4', ARRAY[:b]);
SELECT count(*) AS first_page FROM synclog.range('cu', :'l4', ARRAY[:b], NULL, NULL, 1);
SELECT bucket = :b AS same_bucket, ns AS an, key AS ak
  FROM synclog.range('cu', :'l4', ARRAY[:b], NULL, NULL, 1) \gset
SELECT :'same_bucket' AS same_bucket, count(*) = :items - 1 AS rest
  FROM synclog.range('cu', :'l4', ARRAY[:b, :b], :an::smallint, :'ak');

-- Catching up from every kind of position to the head: the replica ends
-- at catch_up_target's hash; the rows follow the keys changed.
CREATE TEMP TABLE positions (name text, log text, pos bigint);
INSERT INTO positions VALUES
	('empty', NULL, NULL),
	('log1 base', :'l1', 0), ('log1 mid', :'l1', 20), ('log1 end', :'l1', 42),
	('log2 base', :'l2', 42), ('log2 mid', :'l2', 43),
	('log3 base', :'l3', (SELECT base_lsn FROM synclog.log WHERE log_id = :'l3')),
	('log4 base', :'l4', (SELECT base_lsn FROM synclog.log WHERE log_id = :'l4')),
	('log4 mid', :'l4', (SELECT base_lsn + 1 FROM synclog.log WHERE log_id = :'l4')),
	('head', :'l4', :lsn);
-- Each replica: the range download of its log's base, then its log replayed up to the position.
SELECT name, CASE WHEN log IS NULL THEN 0 ELSE pg_temp.load_range(name, 'cu', log, 1000) END AS loaded
  FROM positions ORDER BY pos NULLS FIRST, name;
SELECT count(pg_temp.replay(name, 'cu', log, (SELECT base_lsn FROM synclog.log WHERE log_id = log), pos))
  FROM positions WHERE log IS NOT NULL;
-- At a position inside the log: range hashes and ranges of the state
-- there (the base's moved by the entries in between) agree with the
-- replicas the log's replay built, bucket by bucket and item by item.
SELECT p.name,
	   (SELECT pg_temp.hsum(h.hash) FROM synclog.range_hashes('cu', :'l4', p.pos) h)
		 = pg_temp.rep_hash(p.name) AS sum_ok,
	   NOT EXISTS (
		SELECT 1 FROM synclog.range_hashes('cu', :'l4', p.pos) h
		  FULL JOIN (SELECT synclog.bucket(ns, key) AS bucket,
							pg_temp.hsum(pg_temp.item_hash(ns, key, value)) AS hash
					   FROM rep WHERE r = p.name GROUP BY 1) s USING (bucket)
		 WHERE h.hash IS DISTINCT FROM s.hash) AS per_bucket_ok,
	   pg_temp.load_range('at ' || p.name, 'cu', :'l4', 3, p.pos) AS pages_of_3
  FROM positions p WHERE p.log = :'l4' ORDER BY p.pos;
SELECT p.name, NOT EXISTS (
		(SELECT ns, key, value FROM rep WHERE r = p.name
		 EXCEPT SELECT ns, key, value FROM rep WHERE r = 'at ' || p.name)
		UNION ALL
		(SELECT ns, key, value FROM rep WHERE r = 'at ' || p.name
		 EXCEPT SELECT ns, key, value FROM rep WHERE r = p.name)) AS range_is_replica
  FROM positions p WHERE p.log = :'l4' ORDER BY p.pos;
SELECT p.name, (pg_temp.catch_up(p.name, 'cu', p.log, p.pos, :'l4', :lsn, 5)).*,
	   pg_temp.rep_hash(p.name) = :'target_hash' AS at_target
  FROM positions p ORDER BY p.pos NULLS FIRST, p.name;
-- The head's sum is catch_up_target's hash; a position's buckets that the
-- entries did not touch are the base's.
SELECT (SELECT pg_temp.hsum(hash) FROM synclog.range_hashes('cu', :'l4', :lsn)) = :'target_hash' AS head_sum,
	   (SELECT count(*) FROM synclog.range_hashes('cu', :'l4', :lsn) h
		  JOIN synclog.range_hashes('cu', :'l4') b USING (bucket)
		 WHERE h.hash <> b.hash) AS buckets_moved;
-- One bucket at the head, keys the log wrote included, in pages of one.
SELECT synclog.bucket(1::smallint, 'k007') AS bk \gset
SELECT count(*) AS head_bucket_rows,
	   bool_and(synclog.bucket(ns, key) = :bk) AS all_in_bucket,
	   count(*) FILTER (WHERE key = 'k007' AND value = 'v4') AS new_value
  FROM synclog.range('cu', :'l4', ARRAY[:bk], lsn => :lsn);
SELECT ns AS hn, key AS hk FROM synclog.range('cu', :'l4', ARRAY[:bk], NULL, NULL, 1, :lsn) \gset
SELECT count(*) + 1 = (SELECT count(*) FROM synclog.range('cu', :'l4', ARRAY[:bk], lsn => :lsn)) AS paged
  FROM synclog.range('cu', :'l4', ARRAY[:bk], :hn::smallint, :'hk', 1000, :lsn);

-- The target's hash is the hash the next rotation computes.
SELECT synclog.compact('cu') AS l5 \gset
SELECT snapshot_hash = :'target_hash' AS rotation_agrees,
	   snapshot_hash = synclog.recompute_hash('cu', :'l5') AS recomputed
  FROM synclog.log WHERE log_id = :'l5';
SELECT (pg_temp.check_ranges('cu', :'l5')).*;

-- From a position in log 2, the rows are the keys changed since (plus
-- items of the buckets' versions), not the 60 entries of logs 2 to 4.
SELECT synclog.append('cu', ARRAY['w']::bytea[], ARRAY['w5']::bytea[]);
SELECT lsn AS lsn5, snapshot_hash AS hash5 FROM synclog.catch_up_target('cu') \gset
SELECT (pg_temp.catch_up('log2 mid', 'cu', :'l2', 43, :'l5', :lsn5, 1000)).*,
	   pg_temp.rep_hash('log2 mid') = :'hash5' AS at_target;

-- gc at retention 0 collects logs 1 to 3 (4 is previous); their range hash
-- rows go, and what is left still sums right.
SELECT count(*) AS rows_before FROM synclog.range_hash
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cu') \gset
SELECT synclog.gc() AS collected;
SELECT n, (pg_temp.check_ranges('cu', l)).*
  FROM (VALUES (4, :'l4'), (5, :'l5')) v(n, l) ORDER BY n;
-- Nothing is kept below the newest full row at or below the oldest
-- retained base, from which the hashes there are read.
SELECT count(*) < :rows_before AS fewer_rows,
	   count(*) FILTER (WHERE r.lsn < (SELECT max(f.lsn) FROM synclog.range_hash f
										WHERE f.doc_id = l.doc_id AND f.full_image
										  AND f.lsn <= l.base_lsn)) AS rows_below_full,
	   count(*) FILTER (WHERE r.full_image AND r.lsn <= l.base_lsn) AS full_rows_at_or_below
  FROM synclog.range_hash r JOIN synclog.log l ON l.log_id = :'l4' AND r.doc_id = l.doc_id;
-- A retained position still catches up right after gc (versions above it stay).
SELECT name, (pg_temp.catch_up(name, 'cu', log, pos, :'l5', :lsn5, 3)).*,
	   pg_temp.rep_hash(name) = :'hash5' AS at_target
  FROM positions WHERE name IN ('log4 base', 'log4 mid', 'empty') ORDER BY name;

-- sync_cost: replay bytes after the position, the catch-up bound, the snapshot.
SELECT name, replay_bytes, catch_up_bytes, snapshot_bytes, head_log = :'l5' AS head, head_lsn = :lsn5 AS at_head
  FROM positions p, LATERAL synclog.sync_cost('cu', p.log, p.pos,
		CASE WHEN p.log IS NOT NULL THEN synclog.chain_at('cu', p.log, p.pos) END) c
 WHERE p.name IN ('empty', 'log4 base', 'log4 mid', 'head') ORDER BY p.pos NULLS FIRST, p.name;
-- The bound holds: catch_up from log 4's base returns at most catch_up_bytes of keys and values.
SELECT sum(octet_length(key) + coalesce(octet_length(value), 0)) <= c.catch_up_bytes AS bounded
  FROM synclog.sync_cost('cu', :'l4', (SELECT base_lsn FROM synclog.log WHERE log_id = :'l4'),
		synclog.base_chain('cu', :'l4')) c,
	   synclog.catch_up('cu', :'l4', (SELECT base_lsn FROM synclog.log WHERE log_id = :'l4'),
		synclog.base_chain('cu', :'l4'), :'l5', :lsn5) x
 GROUP BY c.catch_up_bytes;
-- replay_bytes is what reading every log from the position to the head moves in deltas.
SELECT p.name, c.replay_bytes = (
		SELECT coalesce(sum(octet_length(r.delta)), 0)
		  FROM synclog.log l,
			   LATERAL synclog.read('cu', l.log_id, greatest(p.pos, l.base_lsn), 100000, 1000000000) r
		 WHERE l.doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cu')
		   AND l.generation >= (SELECT generation FROM synclog.log WHERE log_id = p.log)
		   AND r.kind = 'delta') AS replay_right
  FROM positions p,
	   LATERAL synclog.sync_cost('cu', p.log, p.pos, synclog.chain_at('cu', p.log, p.pos)) c
 WHERE p.log IS NOT NULL
   AND (SELECT state FROM synclog.log WHERE log_id = p.log) <> 'collected'
 ORDER BY p.pos, p.name;
-- From the empty state the bound is exact: the head state's bytes.
SELECT sum(octet_length(key) + octet_length(value)) = c.catch_up_bytes AS exact,
	   c.catch_up_bytes < c.snapshot_bytes AS below_download
  FROM synclog.sync_cost('cu', NULL, NULL, NULL) c,
	   synclog.catch_up('cu', NULL, NULL, NULL, :'l5', :lsn5) x
 GROUP BY c.catch_up_bytes, c.snapshot_bytes;
-- In the active log the bound is exact too: what catch_up returns (keys
-- rewritten, a deletion, a client's watermark moved twice).
SELECT synclog.create_doc('cu-active') AS la \gset
SELECT count(synclog.append('cu-active', ARRAY[int4send(i % 3), int4send(10 + i)],
		ARRAY[convert_to(repeat('v', i * 10), 'UTF8'), NULL], 'w', i))
  FROM generate_series(1, 6) i;
SELECT count(*) AS items, sum(octet_length(key) + coalesce(octet_length(value), 0)) = c.catch_up_bytes AS exact,
	   c.catch_up_bytes < c.replay_bytes AS below_replay
  FROM synclog.catch_up_target('cu-active') t,
	   LATERAL synclog.sync_cost('cu-active', :'la', 1, synclog.chain_at('cu-active', :'la', 1)) c,
	   LATERAL synclog.catch_up('cu-active', :'la', 1, synclog.chain_at('cu-active', :'la', 1), t.log_id, t.lsn) x
 GROUP BY c.catch_up_bytes, c.replay_bytes;
SELECT synclog.drop_doc('cu-active');

-- Bad arguments ---------------------------------------------------------------------

SELECT synclog.create_doc('cu-other') AS lo \gset
SELECT synclog.base_chain('cu', :'l4') AS chain4, base_lsn AS base4
  FROM synclog.log WHERE log_id = :'l4' \gset
-- Log 3 was collected last: its row stays (SL003); logs 1 and 2 are forgotten (SL002).
\set VERBOSITY sqlstate
SELECT synclog.bucket(3::smallint, 'a');
SELECT synclog.bucket(1::smallint, decode(repeat('00', 1025), 'hex'));
SELECT * FROM synclog.range_hashes(NULL, :'l4');
SELECT * FROM synclog.range_hashes('cu', 'no-such-log');
SELECT * FROM synclog.range_hashes('cu', :'l1');
SELECT * FROM synclog.range_hashes('cu', :'l3');
SELECT * FROM synclog.range_hashes('cu', :'lo');
SELECT * FROM synclog.range('cu', :'l4', ARRAY[4096]);
SELECT * FROM synclog.range('cu', :'l4', ARRAY[-1]);
SELECT * FROM synclog.range('cu', :'l4', ARRAY[1, NULL]);
SELECT * FROM synclog.range('cu', :'l4', NULL);
SELECT * FROM synclog.range('cu', :'l4', ARRAY[1], max_rows => 0);
SELECT * FROM synclog.range('cu', :'l4', ARRAY[1], 1::smallint, NULL);
SELECT * FROM synclog.range('cu', :'l4', ARRAY[1], 3::smallint, 'a');
SELECT * FROM synclog.range('cu', :'l4', ARRAY[1], lsn => 1);
SELECT * FROM synclog.range('cu', :'l4', ARRAY[1], lsn => 100000);
SELECT * FROM synclog.range_hashes('cu', :'l4', 1);
SELECT * FROM synclog.range_hashes('cu', :'l4', 100000);
SELECT * FROM synclog.range('cu', :'l1', ARRAY[1]);
SELECT * FROM synclog.range('cu', :'l3', ARRAY[1]);
SELECT * FROM synclog.catch_up(NULL, :'l4', 1, :'chain4', :'l5', :lsn5);
SELECT * FROM synclog.catch_up('cu', 'no-such-log', 1, :'chain4', :'l5', :lsn5);
SELECT * FROM synclog.catch_up('cu', :'l1', 1, :'chain4', :'l5', :lsn5);
SELECT * FROM synclog.catch_up('cu', :'l3', 50, :'chain4', :'l5', :lsn5);
SELECT * FROM synclog.catch_up('cu', :'l4', :base4, '\x00000000000000000000000000000000', :'l5', :lsn5);
SELECT * FROM synclog.catch_up('cu', :'l4', 60, :'chain4', :'l5', :lsn5);
SELECT * FROM synclog.catch_up('cu', :'l4', :base4, :'chain4', :'l3', 50);
SELECT * FROM synclog.catch_up('cu', :'l4', 60, NULL, :'l5', :lsn5);
SELECT * FROM synclog.catch_up('cu', :'l5', :lsn5, synclog.chain_at('cu', :'l5', :lsn5), :'l4', 60);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'lo', 0);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, 'no-such-log', 0);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', :lsn5 + 1);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', 1);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', NULL);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', :lsn5, max_rows => 0);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', :lsn5, 1::smallint, NULL);
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', :lsn5, 3::smallint, 'a');
SELECT * FROM synclog.catch_up('nodoc', NULL, NULL, NULL, :'l5', :lsn5);
SELECT * FROM synclog.catch_up_target(NULL);
SELECT * FROM synclog.catch_up_target('nodoc');
SELECT * FROM synclog.sync_cost('cu', :'l1', 1, :'chain4');
SELECT * FROM synclog.sync_cost('cu', :'l3', 50, :'chain4');
SELECT * FROM synclog.sync_cost('cu', :'l4', :base4, '\x00000000000000000000000000000000');
SELECT * FROM synclog.sync_cost('cu', :'l4', 100000, :'chain4');
SELECT * FROM synclog.sync_cost('cu', :'l4', NULL, :'chain4');
\set VERBOSITY default
-- Some of the messages (terse: log ids are random).
\set VERBOSITY terse
SELECT * FROM synclog.range('cu', :'l4', ARRAY[7, 4096]);
SELECT * FROM synclog.catch_up('cu', :'l5', :lsn5, synclog.chain_at('cu', :'l5', :lsn5), :'l4', 57);
SELECT * FROM synclog.catch_up('cu', :'l4', :base4, :'chain4', :'l5', :lsn5, 1::smallint, NULL);

-- A target inside a group (here the two entries of one transaction): refused.
\set VERBOSITY default
BEGIN;
SELECT synclog.append('cu', ARRAY['g1']::bytea[], ARRAY['1']::bytea[]) AS g1 \gset
SELECT synclog.append('cu', ARRAY['g2']::bytea[], ARRAY['2']::bytea[]);
COMMIT;
\set VERBOSITY terse
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', :g1);
SELECT * FROM synclog.range_hashes('cu', :'l5', :g1);
SELECT * FROM synclog.range('cu', :'l5', ARRAY[1], lsn => :g1);
\set VERBOSITY default

-- Access: a role without the reader kind, and a reader confined elsewhere.
CREATE ROLE regress_cu_none;
CREATE ROLE regress_cu_reader;
SELECT synclog.grant_role('regress_cu_reader', 'reader');
SELECT synclog.grant_doc('regress_cu_reader', 'cu-other', 'read');
SET ROLE regress_cu_none;
\set VERBOSITY sqlstate
SELECT * FROM synclog.catch_up_target('cu');
SET ROLE regress_cu_reader;
SELECT * FROM synclog.catch_up_target('cu');
SELECT * FROM synclog.catch_up('cu', NULL, NULL, NULL, :'l5', :lsn5);
SELECT * FROM synclog.range_hashes('cu', :'l5');
SELECT * FROM synclog.range('cu', :'l5', ARRAY[1]);
SELECT * FROM synclog.sync_cost('cu', NULL, NULL, NULL);
\set VERBOSITY default
-- Its own document it reads.
SELECT lsn, snapshot_hash = synclog.empty_hash() AS empty FROM synclog.catch_up_target('cu-other');
SELECT count(*) FROM synclog.catch_up('cu-other', NULL, NULL, NULL, :'lo', 0);
RESET ROLE;

-- gc never takes what a retained position needs: it collects oldest first,
-- so it removes only versions and range hash rows at or below the end of
-- a log older than the position.  A follower's ack keeps log 4; two more
-- rotations delete keys written in log 1 (tombstones), add and delete keys
-- across logs and within one; gc collects nothing (log 4 is oldest and
-- kept), and the follower catches up across the sealed logs 5 and 6.
SELECT synclog.ack('cu', 'follower', :'l4', :base4);
SELECT synclog.append('cu', ARRAY['k008', 'n1']::bytea[], ARRAY[NULL, 'n']::bytea[]);
SELECT synclog.compact('cu') AS l6 \gset
SELECT synclog.append('cu', ARRAY['k009', 'n1', 'n2']::bytea[], ARRAY[NULL, NULL, 'm']::bytea[]);
SELECT synclog.append('cu', ARRAY['n2']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.compact('cu') AS l7 \gset
SELECT synclog.append('cu', ARRAY['k012']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.gc() AS collected;
SELECT state FROM synclog.log WHERE log_id = :'l4';
SELECT lsn AS lsn7, snapshot_hash AS hash7 FROM synclog.catch_up_target('cu') \gset
SELECT pg_temp.load_range('follower', 'cu', :'l4', 1000) AS pages;
SELECT (pg_temp.catch_up('follower', 'cu', :'l4', :base4, :'l7', :lsn7, 4)).*,
	   pg_temp.rep_hash('follower') = :'hash7' AS at_target;
-- k008, k009 and k012 come as deletions; n1 (written in log 5, deleted in
-- log 6: absent at both ends) and n2 (written and deleted in log 6) do not.
SELECT key, value FROM synclog.catch_up('cu', :'l4', :base4, :'chain4', :'l7', :lsn7)
 WHERE key IN ('k008', 'k009', 'k012', 'n1', 'n2') ORDER BY key;
SELECT n, (pg_temp.check_ranges('cu', l)).*
  FROM (VALUES (6, :'l6'), (7, :'l7')) v(n, l) ORDER BY n;

-- drop_doc removes the document's range hashes.
SELECT doc_id AS cu_id FROM synclog.doc WHERE name = 'cu' \gset
SELECT synclog.drop_doc('cu');
SELECT synclog.drop_doc('cu-other');
SELECT count(*) AS range_rows_left FROM synclog.range_hash WHERE doc_id = :cu_id;
SELECT synclog.revoke_role('regress_cu_reader');
DROP ROLE regress_cu_none;
DROP ROLE regress_cu_reader;
RESET synclog.retention;
RESET synclog.retention_max;
