-- The snapshot hash in SQL.

SELECT synclog.empty_hash() = '\x01' || decode(repeat('00', 32), 'hex') AS empty_ok;
SELECT * FROM synclog.hash_info(synclog.empty_hash());

-- Vector: {0x01 -> "hello"}.
SELECT synclog.state_hash(k, v) FROM (VALUES ('\x01'::bytea, 'hello'::bytea)) t(k, v);
SELECT * FROM synclog.hash_info(
	(SELECT synclog.state_hash(k, v) FROM (VALUES ('\x01'::bytea, 'hello'::bytea)) t(k, v)));

-- Order does not matter; a NULL value is an absent key.
SELECT (SELECT synclog.state_hash(k, v ORDER BY k) FROM (VALUES ('\x01'::bytea, '\x0a'::bytea), ('\x02', '\x0b'), ('\x03', NULL)) t(k, v))
	 = (SELECT synclog.state_hash(k, v ORDER BY k DESC) FROM (VALUES ('\x01'::bytea, '\x0a'::bytea), ('\x02', '\x0b')) t(k, v))
	AS order_independent;

-- Keys are covered: moving a value to another key changes the hash.
SELECT (SELECT synclog.state_hash(k, v) FROM (VALUES ('a'::bytea, 'b'::bytea)) t(k, v))
	<> (SELECT synclog.state_hash(k, v) FROM (VALUES ('b'::bytea, 'a'::bytea)) t(k, v))
	AS keys_count;

-- Combining the hashes of disjoint sets equals hashing their union.
SELECT synclog.hash_combine(
		(SELECT synclog.state_hash(k, v) FROM (VALUES ('\x01'::bytea, '\x0a'::bytea)) t(k, v)),
		(SELECT synclog.state_hash(k, v) FROM (VALUES ('\x02'::bytea, '\x0b'::bytea)) t(k, v)))
	 = (SELECT synclog.state_hash(k, v) FROM (VALUES ('\x01'::bytea, '\x0a'::bytea), ('\x02', '\x0b')) t(k, v))
	AS combine_is_union;

-- Client watermarks hash into the same structure, under their own namespace.
SELECT synclog.state_hash(c, s, l) FROM (VALUES ('client-a', 7::bigint, 3::bigint)) t(c, s, l);
SELECT (SELECT synclog.state_hash(c, s, l) FROM (VALUES ('client-a', 7::bigint, 3::bigint)) t(c, s, l))
	<> (SELECT synclog.state_hash(c, s, l) FROM (VALUES ('client-a', 7::bigint, 4::bigint)) t(c, s, l))
	AS watermark_lsn_counts;

-- Parallel aggregation (partial states combined) gives the same answer as serial.
CREATE TABLE hash_rows AS
	SELECT int4send(i) AS k, sha256(int4send(i)) AS v FROM generate_series(1, 20000) i;
ANALYZE hash_rows;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT synclog.state_hash(k, v) FROM hash_rows;
SELECT synclog.state_hash(k, v) = (SELECT synclog.state_hash(k, v ORDER BY k) FROM hash_rows)
	AS same FROM hash_rows;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE hash_rows;

-- Bad input.
SELECT synclog.hash_combine(NULL, synclog.empty_hash());
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.hash_combine('\x01', synclog.empty_hash());
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.hash_info('\x02' || decode(repeat('00', 32), 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.state_hash(k, v) FROM (VALUES (NULL::bytea, '\x01'::bytea)) t(k, v);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.state_hash(c, s, l) FROM (VALUES ('client-a', NULL::bigint, 3::bigint)) t(c, s, l);
\echo :LAST_ERROR_SQLSTATE
