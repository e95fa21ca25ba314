-- Compressed deltas (PROTOCOL.md section 10, "Version 2 (compressed)
-- deltas"): what an append stores, what every reader gets back, the
-- vectors of section 14 (l), and every refusal of the decoder.

SELECT synclog.create_doc('z') AS log1 \gset
SHOW synclog.compression;
SHOW synclog.compression_min_size;
\set VERBOSITY sqlstate
SET synclog.compression_min_size = 255;
\set VERBOSITY default
-- 1: text pages, compressed; 2: a small delta, stays version 1; 3: random
-- bytes, not worth trying; 4: the same pages with compression off.
SELECT synclog.append('z', ARRAY[int4send(p)], ARRAY[convert_to(repeat('page ' || p || ' of the store; ', 200), 'UTF8')])
  FROM generate_series(1, 1) p;
SELECT synclog.append('z', ARRAY['\x0a'::bytea], ARRAY['\x0b'::bytea], 'w', 1);
SELECT synclog.append('z', ARRAY['\x0c'::bytea],
					  ARRAY[(SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 128) g)]);
SET synclog.compression = off;
SELECT synclog.append('z', ARRAY[int4send(2)], ARRAY[convert_to(repeat('page 2 of the store; ', 200), 'UTF8')]);
RESET synclog.compression;
-- Under synclog.compression_min_size: stored as it comes.
SET synclog.compression_min_size = 100000;
SELECT synclog.append('z', ARRAY[int4send(3)], ARRAY[convert_to(repeat('page 3 of the store; ', 200), 'UTF8')]);
RESET synclog.compression_min_size;

-- How each is stored: version byte, codec, raw_len against log_bytes'
-- version 1 size (log_bytes counts version 1 bytes, compressed or not).
SELECT lsn, get_byte(delta, 0) AS version,
	   CASE WHEN get_byte(delta, 0) = 2 THEN get_byte(delta, 1) END AS codec,
	   CASE WHEN get_byte(delta, 0) = 2
			THEN get_byte(delta, 2) + 256 * get_byte(delta, 3)
				 + 65536 * get_byte(delta, 4) + 16777216 * get_byte(delta, 5) END AS raw_len,
	   log_bytes - coalesce(lag(log_bytes) OVER w, 0) AS v1_bytes,
	   octet_length(delta) AS stored_bytes
  FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'z')
WINDOW w AS (ORDER BY lsn)
 ORDER BY lsn;

-- synclog.read returns exactly the version 1 deltas that were appended,
-- in pages whose byte budget counts version 1 bytes.
SELECT r.lsn, get_byte(r.delta, 0) AS version, octet_length(r.delta) AS bytes,
	   r.delta = synclog.encode_delta(ARRAY(SELECT key FROM synclog.decode_delta(r.delta)),
									  ARRAY(SELECT value FROM synclog.decode_delta(r.delta))) AS reencodes
  FROM synclog.read('z', :'log1', 0) r;
SELECT r.delta = synclog.encode_delta(ARRAY[int4send(1)],
		ARRAY[convert_to(repeat('page 1 of the store; ', 200), 'UTF8')]) AS same_bytes
  FROM synclog.read('z', :'log1', 0, 1) r;
SELECT lsn FROM synclog.read('z', :'log1', 0, max_bytes => 4300);
SELECT lsn FROM synclog.read('z', :'log1', 1, max_bytes => 4400);
-- decode_delta reads a stored compressed delta as it reads any.
SELECT key, octet_length(value) AS value_bytes
  FROM synclog.decode_delta((SELECT delta FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
							 WHERE d.name = 'z' AND lsn = 1));

-- The fold and the snapshot see version 1 bytes: the state and its hash
-- are those of the same deltas uncompressed.
SELECT synclog.compact('z') AS log2 \gset
SELECT key, octet_length(value) AS value_bytes, md5(value)
  FROM synclog.snapshot('z', :'log2');
SELECT synclog.recompute_hash('z', :'log2') = snapshot_hash AS hash_ok,
	   snapshot_hash = (SELECT synclog.hash_combine(
				(SELECT synclog.state_hash(k, v) FROM (VALUES
					(int4send(1), convert_to(repeat('page 1 of the store; ', 200), 'UTF8')),
					(int4send(2), convert_to(repeat('page 2 of the store; ', 200), 'UTF8')),
					(int4send(3), convert_to(repeat('page 3 of the store; ', 200), 'UTF8')),
					('\x0a'::bytea, '\x0b'::bytea),
					('\x0c'::bytea, (SELECT decode(string_agg(md5(g::text), ''), 'hex')
									   FROM generate_series(1, 128) g))) s(k, v)),
				synclog.state_hash('w'::text, 1::bigint, 2::bigint))) AS same_as_uncompressed
  FROM synclog.current_log('z');
-- ... and so does collection, which reads the changes of the logs it drops.
SELECT synclog.append('z', ARRAY[int4send(1)], ARRAY[convert_to(repeat('page 1, again; ', 300), 'UTF8')]);
SELECT synclog.compact('z') AS log3 \gset
SELECT synclog.append('z', ARRAY[int4send(1)], ARRAY[convert_to(repeat('page 1, third; ', 300), 'UTF8')]);
SELECT synclog.compact('z') AS log4 \gset
SET synclog.retention = 0;
SELECT synclog.gc();
RESET synclog.retention;
SELECT count(*) AS entries_left_of_log1
  FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
 WHERE d.name = 'z' AND e.lsn <= 5;
SELECT key, md5(value) FROM synclog.snapshot('z', :'log4') WHERE key = int4send(1);
SELECT synclog.recompute_hash('z', :'log4') = snapshot_hash AS hash_ok
  FROM synclog.current_log('z');

-- (l) The vectors: compressed deltas decode to their version 1 content.
-- (l1) key 00000001 -> 4096 x ab (the first item of vector (c)).
SELECT encode(synclog.encode_delta(array_agg(key), array_agg(value)), 'hex') = '0101000000040000000000000100100000' || repeat('ab', 4096) AS j1_ok,
	   count(*), min(octet_length(value))
  FROM synclog.decode_delta('\x02021110000028b52ffd60110fb5000068010100000004000100100000ab0200fc07be08c008');
-- (l2) key "note" -> "synclog " x 40.
SELECT encode(key, 'escape') AS key, value = convert_to(repeat('synclog ', 40), 'UTF8') AS value_ok
  FROM synclog.decode_delta('\x02025101000028b52ffd605100050100c80101000000040000006e6f74654001000073796e636c6f67200100d54c2d63');
-- (l3) delta (f1) in a frame of one raw block.
SELECT key, value
  FROM synclog.decode_delta('\x02021b00000028b52ffd201bd900000102000000020000006b31020000007631020000006b32ffffffff');

-- Refusals: 22P03 for the envelope and the frame, the version 1 codes for
-- the delta inside.
SELECT * FROM synclog.decode_delta('\x02021b0000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x02011b00000028b52ffd201bd90000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x020200000000');
\echo :LAST_ERROR_SQLSTATE
-- raw_len above "synclog.max_delta_size"
SET synclog.max_delta_size = '1kB';
SELECT * FROM synclog.decode_delta('\x02021110000028b52ffd60110fb5000068010100000004000100100000ab0200fc07be08c008');
\echo :LAST_ERROR_SQLSTATE
RESET synclog.max_delta_size;
-- raw_len one more than the frame holds; a byte after the frame; two frames
SELECT * FROM synclog.decode_delta('\x02021c00000028b52ffd201bd900000102000000020000006b31020000007631020000006b32ffffffff');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x02021b00000028b52ffd201bd900000102000000020000006b31020000007631020000006b32ffffffff00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x02021b00000028b52ffd201bd900000102000000020000006b31020000007631020000006b32ffffffff28b52ffd201bd900000102000000020000006b31020000007631020000006b32ffffffff');
\echo :LAST_ERROR_SQLSTATE
-- a bomb: 25 bytes of frame for 512 KiB of zeros, refused by raw_len
-- before anything is allocated; under a limit it allows, decoded (into
-- exactly raw_len bytes) and found to be no delta; announced as 1 KiB, it
-- does not fit
SET synclog.max_delta_size = '64kB';
SELECT * FROM synclog.decode_delta('\x020200000800' || '\x28b52ffda000000800020010000200100002001000030010'::bytea || '\x00');
\echo :LAST_ERROR_SQLSTATE
RESET synclog.max_delta_size;
SELECT * FROM synclog.decode_delta('\x020200000800' || '\x28b52ffda000000800020010000200100002001000030010'::bytea || '\x00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x020200040000' || '\x28b52ffda000000800020010000200100002001000030010'::bytea || '\x00');
\echo :LAST_ERROR_SQLSTATE
-- the delta inside: cut short, a version 2 delta, a key too long, too many
-- changes for "synclog.max_delta_changes"
SELECT * FROM synclog.decode_delta('\x02021100000028b52ffd20118900000102000000020000006b31020000007631');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x02020600000028b52ffd2006310000020206000000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x02020900000028b52ffd2009490000010100000001040000');
\echo :LAST_ERROR_SQLSTATE
SET synclog.max_delta_changes = 1;
SELECT * FROM synclog.decode_delta('\x02021b00000028b52ffd201bd900000102000000020000006b31020000007631020000006b32ffffffff');
\echo :LAST_ERROR_SQLSTATE
RESET synclog.max_delta_changes;
-- a duplicate key inside: the checks of a version 1 delta, 22023
SELECT * FROM synclog.decode_delta('\x02021b00000028b52ffd201bd900000102000000020000006b31020000007631020000006b31ffffffff');
\echo :LAST_ERROR_SQLSTATE
-- Appends take version 1 deltas only.
SELECT synclog.append_delta('z', '\x02021b00000028b52ffd201bd900000102000000020000006b31020000007631020000006b32ffffffff');
\echo :LAST_ERROR_SQLSTATE

-- A damaged stored delta is corruption, XX001, for every reader of it.
SELECT synclog.append('z', ARRAY[int4send(7)], ARRAY[convert_to(repeat('page 7 of the store; ', 200), 'UTF8')]) AS lsn7 \gset
UPDATE synclog.entry SET delta = overlay(delta placing '\xffffffff'::bytea from 20)
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'z') AND lsn = :lsn7;
\set VERBOSITY terse
SELECT lsn FROM synclog.read('z', :'log4', :lsn7 - 1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.compact('z');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT synclog.drop_doc('z');
