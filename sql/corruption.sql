-- Corruption (XX001): a gap in a log, a malformed stored delta, item hash
-- or client watermark is reported as such wherever it is read (the fold of
-- a rotation, a collection, an append's retry check, a read, the snapshot's
-- watermarks), and nothing is changed.  The rows are broken here by hand,
-- as a superuser.  Each failing statement shows its SQLSTATE, message and
-- detail (internal ids and log ids masked): the detail says which check
-- found the damage (the LSN a gap is reported at).

SET synclog.retention = 0;
CREATE FUNCTION cr_try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	detail text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
	RETURN regexp_replace(regexp_replace(SQLSTATE || ': ' || msg || ' / ' || detail,
										 'internal id \d+', 'internal id N'),
						  '[0-9a-f]{32}', 'L', 'g');
END $$;

-- A gap in the active log, in the middle and at the oldest end of the
-- range a rotation folds (newest first: a gap at the oldest end shows only
-- once the walk is over).  A read stops at the gap too.
SELECT synclog.create_doc('cr_gap') AS gap_log \gset
SELECT count(synclog.append('cr_gap', ARRAY[int4send(i)], ARRAY[int4send(i)])) FROM generate_series(1, 5) i;
CREATE TEMP TABLE cr_saved (LIKE synclog.entry);
WITH gone AS (DELETE FROM synclog.entry WHERE lsn = 3
				AND doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_gap') RETURNING *)
INSERT INTO cr_saved SELECT * FROM gone;
SELECT cr_try($$SELECT synclog.compact('cr_gap')$$);
SELECT cr_try(format($$SELECT lsn, kind FROM synclog.read('cr_gap', %L, 0)$$, :'gap_log'));
SELECT lsn, kind FROM synclog.read('cr_gap', :'gap_log', 3);
INSERT INTO synclog.entry SELECT * FROM cr_saved;
DELETE FROM synclog.entry WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_gap') AND lsn = 1;
SELECT cr_try($$SELECT synclog.compact('cr_gap')$$);
-- nothing was rotated
SELECT generation, base_lsn, head_lsn FROM synclog.status WHERE doc = 'cr_gap';

-- A gap in a retired log: its collection fails (walking oldest first), at
-- the gap in the middle and at the end of the range.
SELECT synclog.create_doc('cr_gc') IS NOT NULL AS created;
SELECT count(synclog.append('cr_gc', ARRAY[int4send(i)], ARRAY[int4send(i)])) FROM generate_series(1, 4) i;
SELECT synclog.compact('cr_gc') IS NOT NULL AS rotated;
SELECT synclog.append('cr_gc', ARRAY[int4send(1)], ARRAY['\x01'::bytea]);
SELECT synclog.compact('cr_gc') IS NOT NULL AS rotated;
SELECT synclog.append('cr_gc', ARRAY[int4send(1)], ARRAY['\x02'::bytea]);
SELECT synclog.compact('cr_gc') IS NOT NULL AS rotated;
DELETE FROM synclog.entry WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_gc') AND lsn = 2;
SELECT cr_try($$SELECT synclog.gc()$$);
DELETE FROM synclog.entry WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_gc') AND lsn = 4;
INSERT INTO synclog.entry (doc_id, lsn, log_bytes, delta, chain)
SELECT doc_id, 2, 0, synclog.encode_delta('{}', '{}'), '\x00000000000000000000000000000000' FROM synclog.doc WHERE name = 'cr_gc';
SELECT cr_try($$SELECT synclog.gc()$$);
SELECT generation, state FROM synclog.log WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_gc')
 ORDER BY generation;
-- (gc takes the oldest log of any document first: this one goes now.)
SELECT synclog.drop_doc('cr_gc');

-- A malformed stored delta: the fold and the collection refuse it.
SELECT synclog.create_doc('cr_delta') IS NOT NULL AS created;
SELECT synclog.append('cr_delta', ARRAY['\x01'::bytea], ARRAY['\x01'::bytea]);
UPDATE synclog.entry SET delta = '\x0102000000'
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_delta') AND lsn = 1;
SELECT cr_try($$SELECT synclog.compact('cr_delta')$$);
UPDATE synclog.entry SET delta = synclog.encode_delta(ARRAY['\x01'::bytea], ARRAY['\x01'::bytea])
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_delta') AND lsn = 1;
SELECT synclog.compact('cr_delta') IS NOT NULL AS rotated;
SELECT synclog.append('cr_delta', ARRAY['\x02'::bytea], ARRAY['\x02'::bytea]);
SELECT synclog.compact('cr_delta') IS NOT NULL AS rotated;
SELECT synclog.append('cr_delta', ARRAY['\x03'::bytea], ARRAY['\x03'::bytea]);
SELECT synclog.compact('cr_delta') IS NOT NULL AS rotated;
UPDATE synclog.entry SET delta = '\x02'
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_delta') AND lsn = 1;
SELECT cr_try($$SELECT synclog.gc()$$);
SELECT generation, state FROM synclog.log WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_delta')
 ORDER BY generation;

-- A malformed item hash of a stored version: the next rotation that
-- rewrites the key cannot take the old item out of the hash.
SELECT synclog.create_doc('cr_item') IS NOT NULL AS created;
SELECT synclog.append('cr_item', ARRAY['\x01', '\x02']::bytea[], ARRAY['\x01', '\x02']::bytea[]);
SELECT synclog.compact('cr_item') IS NOT NULL AS rotated;
UPDATE synclog.kv SET item_hash = '\x0000'
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_item') AND key = '\x01';
SELECT synclog.append('cr_item', ARRAY['\x02'::bytea], ARRAY['\x22'::bytea]);
SELECT synclog.compact('cr_item') IS NOT NULL AS rotated;
SELECT synclog.append('cr_item', ARRAY['\x01'::bytea], ARRAY[NULL::bytea]);
SELECT cr_try($$SELECT synclog.compact('cr_item')$$);
SELECT generation, head_lsn FROM synclog.status WHERE doc = 'cr_item';

-- A malformed client watermark: an append of that client whose newest
-- entry was folded (its retry check reads the watermark), and the
-- snapshot's watermarks (snapshot_clients, snapshot_info, recompute_hash).
SELECT synclog.create_doc('cr_wm') IS NOT NULL AS created;
SELECT synclog.append('cr_wm', ARRAY['\x01'::bytea], ARRAY['\x01'::bytea], 'phone', 1);
SELECT synclog.append('cr_wm', ARRAY['\x02'::bytea], ARRAY['\x02'::bytea], 'tablet', 1);
SELECT synclog.compact('cr_wm') AS wm_log \gset
UPDATE synclog.kv SET value = '\x0102'
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_wm') AND ns = 2 AND key = convert_to('phone', 'UTF8');
SELECT cr_try($$SELECT synclog.append('cr_wm', ARRAY['\x01'::bytea], ARRAY['\x11'::bytea], 'phone', 2)$$);
-- another client's retry check does not read it
SELECT synclog.append('cr_wm', ARRAY['\x02'::bytea], ARRAY['\x22'::bytea], 'tablet', 1);
SELECT cr_try(format($$SELECT * FROM synclog.snapshot_clients('cr_wm', %L)$$, :'wm_log'));
SELECT cr_try(format($$SELECT client_count FROM synclog.snapshot_info('cr_wm', %L)$$, :'wm_log'));
SELECT cr_try(format($$SELECT synclog.recompute_hash('cr_wm', %L)$$, :'wm_log'));
SELECT head_lsn FROM synclog.status WHERE doc = 'cr_wm';

-- The entry at a version 2 position is gone: read2 and ack2 cannot check
-- the chain value there.
SELECT synclog.create_doc('cr_chain') AS chain_log \gset
SELECT synclog.append('cr_chain', ARRAY[int4send(i)], ARRAY[int4send(i)]) FROM generate_series(1, 3) i;
SELECT chain AS chain2 FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_chain') AND lsn = 2 \gset
DELETE FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cr_chain') AND lsn = 2;
SELECT cr_try(format($$SELECT * FROM synclog.read2('cr_chain', %L, 2, %L)$$, :'chain_log', :'chain2'));
SELECT cr_try(format($$SELECT synclog.ack2('cr_chain', 'c', %L, 2, %L)$$, :'chain_log', :'chain2'));

SELECT count(synclog.drop_doc(name)) FROM synclog.doc WHERE name LIKE 'cr\_%';
DROP FUNCTION cr_try(text);
RESET synclog.retention;
