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
