-- Serving snapshots in pages, and their summary.

SELECT synclog.create_doc('sn') AS log1 \gset
SELECT synclog.append('sn', ARRAY[int4send(i)], ARRAY[int4send(i * 10)], 'writer-' || (i % 3), i)
  FROM generate_series(1, 25) i;
SELECT synclog.append('sn', ARRAY[int4send(5), int4send(6)], ARRAY[NULL, NULL]::bytea[]);
SELECT synclog.compact('sn') AS log2 \gset

-- Page through the snapshot the way a client does: resume after the last key.
SELECT key, value FROM synclog.snapshot('sn', :'log2', NULL, 5);
SELECT key, value FROM synclog.snapshot('sn', :'log2', '\x00000005', 5);
SELECT count(*) FROM synclog.snapshot('sn', :'log2', '\x00000018', 5);
SELECT count(*) FROM synclog.snapshot('sn', :'log2', '\xff', 5);
SELECT count(*) FROM synclog.snapshot('sn', :'log2');

-- The pages together hash to the snapshot hash.
WITH RECURSIVE pages(n, last_key, h) AS (
	SELECT 0, NULL::bytea, synclog.empty_hash()
	UNION ALL
	SELECT n + 1, p.last_key, synclog.hash_combine(pages.h, p.h)
	  FROM pages, LATERAL (
		SELECT (array_agg(key ORDER BY key DESC))[1] AS last_key, synclog.state_hash(key, value) AS h, count(*) AS cnt
		  FROM synclog.snapshot('sn', :'log2', pages.last_key, 4)) p
	 WHERE p.cnt > 0 AND n < 100
)
SELECT count(*) - 1 AS pages,
	   synclog.hash_combine(
		(SELECT h FROM pages ORDER BY n DESC LIMIT 1),
		(SELECT synclog.state_hash(client_id, client_seq, client_lsn) FROM synclog.snapshot_clients('sn', :'log2')))
	   = (SELECT snapshot_hash FROM synclog.current_log('sn')) AS hash_matches
  FROM pages;

SELECT log_id = :'log2' AS log_ok, base_lsn, snapshot_hash = synclog.recompute_hash('sn', :'log2') AS hash_ok,
	   key_count, key_bytes, client_count, clients
  FROM synclog.snapshot_info('sn', :'log2');
SELECT * FROM synclog.snapshot_clients('sn', :'log2');
SELECT key_count, client_count, clients FROM synclog.snapshot_info('sn', :'log1');

-- A page streams: synclog.snapshot is inlined into the caller's query,
-- which runs synclog.snapshot_rows in its select list (not a FunctionScan,
-- which would materialize the page first).
EXPLAIN (COSTS OFF) SELECT key, value FROM synclog.snapshot('sn', :'log2', NULL, 5);
SELECT count(*) FROM synclog.snapshot_rows('sn', :'log2', NULL, 5) r
  JOIN synclog.snapshot('sn', :'log2', NULL, 5) s USING (key, value);
-- Stopping early (LIMIT, a cursor closed half-way) ends the scan cleanly.
BEGIN;
SELECT key FROM synclog.snapshot('sn', :'log2', NULL, 10) LIMIT 2;
DECLARE c CURSOR FOR SELECT key FROM synclog.snapshot('sn', :'log2', NULL, 10);
FETCH 3 FROM c;
CLOSE c;
SELECT count(*) FROM synclog.snapshot('sn', :'log2');
COMMIT;

-- Values stored out of line, uncompressed (random bytes) and compressed
-- (half random, half zeros), come back whole; so do the materialized
-- pages of version 0.1's C function (synclog_snapshot), called here
-- through a function of its own.
SELECT synclog.create_doc('big-values') AS logb1 \gset
SELECT synclog.append('big-values', ARRAY['\x01', '\x02', '\x03']::bytea[],
	ARRAY[(SELECT decode(string_agg(md5(i::text), ''), 'hex') FROM generate_series(1, 1024) i),
		  (SELECT decode(string_agg(md5(i::text), ''), 'hex') FROM generate_series(1, 512) i)
			|| decode(repeat('00', 8192), 'hex'),
		  '\x2a']::bytea[]);
-- a long key (4-byte header) and a 5-byte one (1-byte header, padded)
SELECT synclog.append('big-values', ARRAY['\x04' || decode(repeat('ab', 299), 'hex'), '\x0500000000']::bytea[],
	ARRAY[(SELECT decode(string_agg(md5((i * 3)::text), ''), 'hex') FROM generate_series(1, 300) i),
		  (SELECT decode(string_agg(md5((i * 5)::text), ''), 'hex') FROM generate_series(1, 301) i)]);
SELECT synclog.compact('big-values') AS logb2 \gset
SELECT substr(key, 1, 5) AS key, length(key) AS key_len, length(value), md5(value)
  FROM synclog.snapshot('big-values', :'logb2');
SELECT substr(k.key, 1, 5) AS key, pg_column_size(k.value) < length(k.value) AS stored_smaller
  FROM synclog.kv k JOIN synclog.doc d USING (doc_id)
 WHERE d.name = 'big-values' AND k.ns = 1 ORDER BY k.key;
CREATE FUNCTION pg_temp.snapshot_v01(doc text, log_id text, after_key bytea, max_rows integer,
	OUT key bytea, OUT value bytea)
RETURNS SETOF record AS 'synclog', 'synclog_snapshot' LANGUAGE C STABLE;
SELECT substr(key, 1, 5) AS key, length(key) AS key_len, length(value), md5(value)
  FROM pg_temp.snapshot_v01('big-values', :'logb2', NULL, 10);
SELECT key, length(value) FROM pg_temp.snapshot_v01('sn', :'log2', '\x00000016', 10);
SELECT synclog.drop_doc('big-values');

-- Bad input.
\set VERBOSITY sqlstate
SELECT * FROM synclog.snapshot('sn', :'log2', NULL, 0);
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.snapshot('sn', :'log2', NULL, NULL);
\set VERBOSITY default
SELECT * FROM synclog.snapshot('sn', NULL);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY sqlstate
SELECT * FROM synclog.snapshot('nope', :'log2');
\set VERBOSITY default
SELECT * FROM synclog.snapshot('sn', 'not-a-log');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.snapshot_info('sn', 'not-a-log');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY sqlstate
SELECT * FROM synclog.snapshot_info(NULL, :'log2');
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.snapshot_clients('nope', :'log2');
\set VERBOSITY default

SELECT synclog.drop_doc('sn');
