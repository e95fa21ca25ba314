-- test/bench/setup.sql: the benchmark database's own objects, next to the
-- extension.  Run once on a fresh database by test/bench/run.sh.
CREATE EXTENSION IF NOT EXISTS synclog;
CREATE SCHEMA bench;

-- A pool of 1024 incompressible 4 KiB values (md5 output is random-looking,
-- so pglz cannot shrink them: a "64 MiB log" really holds 64 MiB).
CREATE TABLE bench.blob (i int PRIMARY KEY, b bytea NOT NULL);
INSERT INTO bench.blob
SELECT i, (SELECT decode(string_agg(md5(i::text || ':' || g::text), ''), 'hex')
             FROM generate_series(1, 256) g)
  FROM generate_series(0, 1023) i;

-- The 4 KiB value written at key k: distinct per key (the first 4 bytes
-- are k), and as incompressible as the pool.
CREATE FUNCTION bench.val(k int) RETURNS bytea LANGUAGE sql STABLE
AS $$ SELECT int4send(k) || substr(b, 5) FROM bench.blob WHERE i = k % 1024 $$;

-- Key k as stored: 4 bytes, big-endian, so bytea order is numeric order.
CREATE FUNCTION bench.key(k int) RETURNS bytea LANGUAGE sql IMMUTABLE
AS $$ SELECT int4send(k) $$;

-- Baselines for appends: the same bytes, one row per transaction, into an
-- indexed table.
CREATE TABLE bench.plain1 (id bigserial PRIMARY KEY, doc text NOT NULL, payload bytea NOT NULL);
CREATE TABLE bench.plain2 (id bigserial PRIMARY KEY, doc text NOT NULL, payload bytea NOT NULL);

-- Baselines for reading a log and a snapshot, and for the memory of a
-- statement that moves a log's worth of bytes.
CREATE TABLE bench.read_plain (lsn bigint PRIMARY KEY, delta bytea NOT NULL);
CREATE TABLE bench.state_plain (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE bench.copy_plain (lsn bigint, delta bytea);

-- A snapshot page materialized before it is sent, as synclog.snapshot was
-- in version 0.1 (the C function in FROM; its body is still in the
-- library), for area 7b's comparison with the streamed page of 0.2.
CREATE FUNCTION bench.snapshot_materialized(doc text, log_id text, after_key bytea,
	max_rows integer, OUT key bytea, OUT value bytea)
RETURNS SETOF record AS 'synclog', 'synclog_snapshot' LANGUAGE C STABLE;

-- Baselines a user would otherwise pick -----------------------------------
--
-- PgQ (Debian's postgresql-15-pgq3): one queue for the appends, one for the
-- log that is read back by a consumer.  Payloads are the same bytes as
-- synclog's, hex-encoded (ev_data is text).
CREATE EXTENSION IF NOT EXISTS pgq;
SELECT pgq.create_queue('bench_q');
SELECT pgq.create_queue('read_q');
-- Ticks are made by hand (pgq.ticker) where batches matter; a tick after
-- every 1000 events, like synclog.read's pages.
SELECT pgq.set_queue_config('read_q', 'ticker_max_count', '1000');

-- A straightforward PL/pgSQL implementation of synclog.append's semantics:
-- a per-document counter row gives the next LSN, the entry goes into an
-- entries table keyed by (document, LSN), both in one function call.
-- (It does less than synclog.append: no delta encoding or validation, no
-- byte accounting, no rotation policy, no idempotent retries.)
CREATE TABLE bench.pl_doc (
	doc_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	head_lsn	bigint NOT NULL DEFAULT 0
);
CREATE TABLE bench.pl_entry (
	doc_id		bigint NOT NULL,
	lsn			bigint NOT NULL,
	keys		bytea[] NOT NULL,
	vals		bytea[] NOT NULL,
	PRIMARY KEY (doc_id, lsn)
);
CREATE FUNCTION bench.pl_append(doc text, keys bytea[], vals bytea[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	d bigint;
	l bigint;
BEGIN
	IF cardinality(keys) IS DISTINCT FROM cardinality(vals) THEN
		RAISE EXCEPTION 'keys and vals differ in length';
	END IF;
	UPDATE bench.pl_doc SET head_lsn = head_lsn + 1 WHERE name = doc
		RETURNING doc_id, head_lsn INTO d, l;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'document "%" does not exist', doc;
	END IF;
	INSERT INTO bench.pl_entry (doc_id, lsn, keys, vals) VALUES (d, l, keys, vals);
	RETURN l;
END $$;

-- Batched deltas (100 changes per entry): the plain baseline's table.
CREATE TABLE bench.plainb (id bigserial PRIMARY KEY, doc text NOT NULL, payload bytea NOT NULL);

-- The rotation matrix's baseline: every change of a document, decoded (one
-- row per key written), from which the obvious SQL rebuild makes the
-- document's state with DISTINCT ON (key).
CREATE TABLE bench.changes (doc text NOT NULL, lsn bigint NOT NULL, key bytea NOT NULL, value bytea);
CREATE INDEX ON bench.changes (doc, lsn);

-- A 100-byte value at key k for logs of small entries: distinct per key.
CREATE FUNCTION bench.small(k int) RETURNS bytea LANGUAGE sql STABLE
AS $$ SELECT int4send(k) || substr(b, 5, 96) FROM bench.blob WHERE i = k % 1024 $$;
