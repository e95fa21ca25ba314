-- Protocol version 2: chain values, positions the server verifies (SL006),
-- groups, pages that never split a group, and pausing compaction.

SELECT synclog.protocol_version();

SELECT synclog.create_doc('p2') AS log1 \gset
SELECT synclog.base_chain('p2', :'log1') AS zero \gset
SELECT :'zero' = '\x00000000000000000000000000000000' AS new_doc_starts_at_zero;

-- Entries: one alone, a transaction of three, one with a client.
SELECT synclog.append('p2', ARRAY['\x01'::bytea], ARRAY['a'::bytea]);
BEGIN;
SELECT synclog.append('p2', ARRAY['\x02'::bytea], ARRAY['b'::bytea]);
SELECT synclog.append('p2', ARRAY['\x03'::bytea], ARRAY['c'::bytea]);
SELECT synclog.append_delta('p2', synclog.encode_delta(ARRAY['\x01'::bytea], ARRAY[NULL::bytea]));
COMMIT;
SELECT synclog.append('p2', ARRAY['\x04'::bytea], ARRAY['d'::bytea], 'cl', 1);
-- A subtransaction that rolls back leaves no entry, and the group goes on.
BEGIN;
SELECT synclog.append('p2', ARRAY['\x05'::bytea], ARRAY['e'::bytea]);
SAVEPOINT s;
SELECT synclog.append('p2', ARRAY['\x06'::bytea], ARRAY['f'::bytea]);
ROLLBACK TO s;
SELECT synclog.append('p2', ARRAY['\x07'::bytea], ARRAY['g'::bytea]);
COMMIT;

-- Every stored chain value is chain_next of the one before (section 4a).
WITH RECURSIVE c(lsn, chain) AS (
	SELECT 0::bigint, :'zero'::bytea
	UNION ALL
	SELECT e.lsn, synclog.chain_next(c.chain, e.lsn, e.delta, e.client_id, e.client_seq)
	  FROM c JOIN synclog.entry e ON e.lsn = c.lsn + 1
	 WHERE e.doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'p2'))
SELECT count(*) AS entries, bool_and(c.chain = e.chain) AS chains_match
  FROM c JOIN synclog.entry e USING (lsn)
 WHERE e.doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'p2');

-- The groups, as read2 gives them.
SELECT lsn, group_lsn, group_end, client_id, client_seq
  FROM synclog.read2('p2', :'log1', 0, :'zero');
SELECT chain AS c1 FROM synclog.read2('p2', :'log1', 0, :'zero', 1) \gset

-- Pages end at group ends: max_entries 1 still gives whole groups.
SELECT lsn, group_end FROM synclog.read2('p2', :'log1', 1, :'c1', 1);
SELECT lsn, group_end FROM synclog.read2('p2', :'log1', 1, :'c1', max_entries => 100, max_bytes => 1);
SELECT chain AS c4 FROM synclog.read2('p2', :'log1', 1, :'c1', 1) WHERE lsn = 4 \gset
SELECT lsn, group_end FROM synclog.read2('p2', :'log1', 4, :'c4', 1);
SELECT lsn, group_end FROM synclog.read2('p2', :'log1', 4, :'c4', 2);
-- Version 1 readers page as before, groups or not.
SELECT lsn FROM synclog.read('p2', :'log1', 1, 1);

-- A position with another chain value is not in this history.
\set VERBOSITY sqlstate
SELECT * FROM synclog.read2('p2', :'log1', 1, :'zero');
SELECT * FROM synclog.read2('p2', :'log1', 0, '\x00000000000000000000000000000001');
SELECT synclog.ack2('p2', 'cl', :'log1', 4, :'c1');
-- Malformed chain values and positions.
SELECT * FROM synclog.read2('p2', :'log1', 1, NULL);
SELECT * FROM synclog.read2('p2', :'log1', 1, '\x00');
SELECT * FROM synclog.read2('p2', :'log1', 99, :'zero');
SELECT synclog.chain_next('\x00', 1, '\x0100000000');
SELECT synclog.chain_next(:'zero', 1, '\x02');
SELECT synclog.chain_next(:'zero', -1, '\x0100000000');
SELECT synclog.chain_next(:'zero', 1, '\x0100000000', 'x', NULL);
\set VERBOSITY default
-- The whole message (log ids are random: shown as <log>).
CREATE FUNCTION pg_temp.show_error(q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hint text;
BEGIN
	EXECUTE q;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RAISE NOTICE E'%: %\nDETAIL: %\nHINT: %', st,
		regexp_replace(msg, '[0-9a-f]{32}', '<log>', 'g'), det, hint;
END $$;
SELECT pg_temp.show_error(format('SELECT * FROM synclog.read2(%L, %L, 1, %L)', 'p2', :'log1', :'zero'));
SELECT synclog.ack2('p2', 'cl', :'log1', 1, :'c1');

-- Rotation: the marker carries the chain at the seal; the next log starts there.
SELECT chain AS c7 FROM synclog.read2('p2', :'log1', 0, :'zero') WHERE lsn = 7 \gset
SELECT synclog.compact('p2') AS log2 \gset
SELECT lsn, kind, chain = :'c7' AS chain_is_seal, next_log_id = :'log2' AS next_ok
  FROM synclog.read2('p2', :'log1', 4, :'c4');
SELECT synclog.base_chain('p2', :'log2') = :'c7' AS base_chain_is_seal;
SELECT count(*) FROM synclog.read2('p2', :'log2', 7, :'c7');
SELECT synclog.ack2('p2', 'cl', :'log2', 7, :'c7');
-- The first append of the new log continues the chain.
SELECT synclog.append('p2', ARRAY['\x08'::bytea], ARRAY['h'::bytea]);
SELECT chain = synclog.chain_next(:'c7', 8, delta) AS continues
  FROM synclog.read2('p2', :'log2', 7, :'c7');

-- A transaction that rotates between its appends: the group ends at the seal.
BEGIN;
SELECT synclog.append('p2', ARRAY['\x09'::bytea], ARRAY['i'::bytea]);
SELECT synclog.compact('p2') AS log3 \gset
SELECT synclog.append('p2', ARRAY['\x0a'::bytea], ARRAY['j'::bytea]);
COMMIT;
SELECT lsn, coalesce(group_lsn, lsn) AS group_lsn FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'p2') AND lsn >= 8 ORDER BY lsn;

-- A transaction's entries to one document are bounded by max_group_size.
SET synclog.max_group_size = '1kB';
BEGIN;
SELECT synclog.append('p2', ARRAY['\x10'::bytea], ARRAY[decode(repeat('00', 600), 'hex')]);
SELECT synclog.append('p2', ARRAY['\x11'::bytea], ARRAY[decode(repeat('00', 600), 'hex')]);
ROLLBACK;
-- One entry alone may be as large as max_delta_size allows.
SELECT synclog.append('p2', ARRAY['\x12'::bytea], ARRAY[decode(repeat('00', 2000), 'hex')]) > 0 AS appended;
RESET synclog.max_group_size;

-- A 64 MB write with the default settings: four appends of 16 000 000 bytes
-- in one transaction (each under max_delta_size), read as one group even
-- by a reader that asks for one entry of one byte.
SELECT synclog.create_doc('p2-big') AS big_log \gset
BEGIN;
SELECT sum(synclog.append('p2-big', ARRAY[int4send(i)],
		   ARRAY[convert_to(repeat(chr(64 + i), 16000000), 'UTF8')])) AS lsn_sum
  FROM generate_series(1, 4) i;
COMMIT;
SELECT lsn, length(delta) AS delta_bytes, group_lsn, group_end
  FROM synclog.read2('p2-big', :'big_log', 0, :'zero', 1, 1);
SELECT synclog.drop_doc('p2-big');

-- Compressed deltas (PROTOCOL.md section 10): a reader that accepts zstd
-- gets a compressible delta as stored (version 2, codec 2), the others
-- version 1 bytes; its chain value is over the version 1 bytes either way.
SELECT synclog.create_doc('p2-zip') AS zip_log \gset
SELECT synclog.append('p2-zip', ARRAY['\x01'::bytea], ARRAY[convert_to(repeat('page ', 2000), 'UTF8')]);
SELECT synclog.append('p2-zip', ARRAY['\x02'::bytea], ARRAY['small'::bytea]);
SELECT lsn, get_byte(delta, 0) AS version, length(delta) < 1000 AS compressed,
	   chain = synclog.chain_next(:'zero', 1, synclog.encode_delta(ARRAY['\x01'::bytea],
			ARRAY[convert_to(repeat('page ', 2000), 'UTF8')])) AS chain_over_v1
  FROM synclog.read2('p2-zip', :'zip_log', 0, :'zero', accept => '{zstd}') WHERE lsn = 1;
SELECT lsn, get_byte(delta, 0) AS version, length(delta)
  FROM synclog.read2('p2-zip', :'zip_log', 0, :'zero', accept => '{zstd}') WHERE lsn = 2;
SELECT lsn, get_byte(delta, 0) AS version, length(delta)
  FROM synclog.read2('p2-zip', :'zip_log', 0, :'zero') WHERE lsn = 1;
\set VERBOSITY sqlstate
SELECT count(*) FROM synclog.read2('p2-zip', :'zip_log', 0, :'zero', accept => '{lz9}');
SELECT count(*) FROM synclog.read2('p2-zip', :'zip_log', 0, :'zero', accept => ARRAY[NULL::text]);
\set VERBOSITY default
SELECT synclog.drop_doc('p2-zip');

-- Pausing: explicit rotations and collections fail, compact_due skips.
SELECT paused FROM synclog.paused();
SELECT synclog.pause('loading a dump');
SELECT paused, reason LIKE 'paused by synclog.pause() at %: loading a dump' AS reason_ok,
	   since IS NOT NULL AS since_set FROM synclog.paused();
\set VERBOSITY terse
SELECT synclog.compact('p2');
SELECT synclog.gc();
SELECT synclog.compact_due();
\set VERBOSITY default
SELECT synclog.pause();
SELECT paused, reason LIKE 'paused by synclog.pause() at %' AS reason_ok FROM synclog.paused();
SELECT synclog.resume();
SELECT synclog.resume();
SELECT paused FROM synclog.paused();
SELECT synclog.compact('p2') IS NOT NULL AS rotated;

-- A rotation refuses a snapshot whose state versions are not there (the
-- kv table of a restore not loaded yet).
SELECT synclog.create_doc('p2-kv') IS NOT NULL AS created;
SELECT synclog.append('p2-kv', ARRAY['\x01'::bytea], ARRAY['a'::bytea]);
SELECT synclog.compact('p2-kv') IS NOT NULL AS rotated;
SELECT synclog.append('p2-kv', ARRAY['\x02'::bytea], ARRAY['b'::bytea]);
BEGIN;
DELETE FROM synclog.kv WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'p2-kv');
\set VERBOSITY terse
SELECT synclog.compact('p2-kv');
\set VERBOSITY default
ROLLBACK;
SELECT synclog.compact('p2-kv') IS NOT NULL AS rotated;
SELECT synclog.drop_doc('p2-kv');

-- Roles: readers get the version 2 reads, only unconfined admins pause.
CREATE ROLE regress_p2_reader;
CREATE ROLE regress_p2_admin;
SELECT synclog.grant_role('regress_p2_reader', 'reader');
SELECT synclog.grant_role('regress_p2_admin', 'admin');
SELECT synclog.grant_doc('regress_p2_admin', 'p2%', 'write');
SET ROLE regress_p2_reader;
SELECT count(*) > 0 AS reads FROM synclog.read2('p2', :'log1', 0, :'zero');
SELECT synclog.base_chain('p2', :'log1') = :'zero' AS base_ok;
SELECT paused FROM synclog.paused();
SELECT synclog.pause();
RESET ROLE;
SET ROLE regress_p2_admin;
SELECT synclog.pause();
SELECT synclog.resume();
RESET ROLE;
SELECT synclog.revoke_role('regress_p2_reader');
SELECT synclog.revoke_role('regress_p2_admin');
DROP ROLE regress_p2_reader;
DROP ROLE regress_p2_admin;

SELECT synclog.drop_doc('p2');
