/*
 * synclog--0.1.sql
 *
 * The extension's tables and its SQL face.  Every function here is a thin
 * binding to the C files under src/ or a small SQL convenience over them; the
 * semantics live in the C files and in PROTOCOL.md.
 *
 * Tables are internal: clients use the functions, never the tables, so
 * the storage design can change without breaking them.
 */

-- complain if script is sourced in psql, rather than in CREATE EXTENSION
\echo Use "CREATE EXTENSION synclog" to load this file. \quit

/*
 * One row per document.  Appends update head_lsn and active_bytes in place;
 * neither is indexed, so with room left on the page (fillfactor) those
 * updates are HOT and the table does not bloat under a write-heavy load.
 */
CREATE TABLE synclog.doc (
	doc_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	head_lsn	bigint NOT NULL DEFAULT 0,
	active_log	text NOT NULL,
	active_base bigint NOT NULL DEFAULT 0,
	active_bytes bigint NOT NULL DEFAULT 0,
	active_since timestamptz NOT NULL DEFAULT now(),
	created_at	timestamptz NOT NULL DEFAULT now(),
	CHECK (head_lsn >= active_base AND active_base >= 0)
) WITH (fillfactor = 50);

/*
 * The chain of logs of each document.  A log covers LSNs
 * (base_lsn, end_lsn]; end_lsn is NULL while it is active.
 *  active    - receives appends
 *  previous  - sealed by the latest rotation; never collected
 *  retired   - sealed two or more generations back; gc may collect it
 *  collected - entries and snapshot gone; the row stays so that a client
 *              holding its id gets "collected" rather than "unknown"
 */
CREATE TABLE synclog.log (
	log_id		text PRIMARY KEY,
	doc_id		bigint NOT NULL,
	generation	integer NOT NULL,
	state		text NOT NULL
		CHECK (state IN ('active', 'previous', 'retired', 'collected')),
	base_lsn	bigint NOT NULL,
	end_lsn		bigint,
	snapshot_hash bytea NOT NULL,
	next_log_id text,
	end_hash	bytea,
	created_at	timestamptz NOT NULL DEFAULT now(),
	sealed_at	timestamptz,
	collected_at timestamptz,
	UNIQUE (doc_id, generation),
	CHECK ((state = 'active') = (end_lsn IS NULL)),
	CHECK (end_lsn IS NULL OR (end_lsn > base_lsn AND next_log_id IS NOT NULL
							   AND end_hash IS NOT NULL))
);
CREATE INDEX log_retired_idx ON synclog.log (sealed_at) WHERE state = 'retired';

/*
 * Log entries, keyed by LSN alone: which log an entry belongs to follows
 * from the log ranges, so a rotation never moves or rewrites entries.
 */
CREATE TABLE synclog.entry (
	doc_id		bigint NOT NULL,
	lsn			bigint NOT NULL,
	delta		bytea NOT NULL,
	client_id	text,
	client_seq	bigint,
	PRIMARY KEY (doc_id, lsn),
	CHECK ((client_id IS NULL) = (client_seq IS NULL))
);
CREATE INDEX entry_client_idx ON synclog.entry (doc_id, client_id, lsn)
	WHERE client_id IS NOT NULL;

/*
 * Versioned document state, written only by rotations: (ns, key) had
 * value from LSN lsn on (NULL: deleted).  The snapshot at LSN s is, per
 * key, the newest version at or below s.  ns 1 holds data keys, ns 2 the
 * per-client watermarks (key = client id, value = seq and LSN).
 */
CREATE TABLE synclog.kv (
	doc_id		bigint NOT NULL,
	ns			smallint NOT NULL CHECK (ns IN (1, 2)),
	key			bytea NOT NULL,
	lsn			bigint NOT NULL,
	value		bytea,
	PRIMARY KEY (doc_id, ns, key, lsn)
);
-- gc finds the versions one log's rotation wrote without scanning the state.
CREATE INDEX kv_lsn_idx ON synclog.kv (doc_id, lsn);

-- Documents and logs --------------------------------------------------------

CREATE FUNCTION synclog.create_doc(doc text)
RETURNS text
AS 'MODULE_PATHNAME', 'synclog_create_doc'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.drop_doc(doc text)
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_drop_doc'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.current_log(doc text,
	OUT log_id text, OUT base_lsn bigint, OUT head_lsn bigint,
	OUT snapshot_hash bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_current_log'
LANGUAGE C STABLE ROWS 1;

-- Appending -----------------------------------------------------------------

CREATE FUNCTION synclog.append(doc text, keys bytea[], vals bytea[],
	client_id text DEFAULT NULL, client_seq bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'synclog_append'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.append_delta(doc text, delta bytea,
	client_id text DEFAULT NULL, client_seq bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'synclog_append_delta'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.encode_delta(keys bytea[], vals bytea[])
RETURNS bytea
AS 'MODULE_PATHNAME', 'synclog_encode_delta'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION synclog.decode_delta(delta bytea,
	OUT key bytea, OUT value bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_decode_delta'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Reading -------------------------------------------------------------------

CREATE FUNCTION synclog.read(doc text, log_id text, after_lsn bigint,
	max_entries integer DEFAULT 1000, max_bytes integer DEFAULT 8388608,
	OUT lsn bigint, OUT kind text, OUT delta bytea, OUT client_id text,
	OUT client_seq bigint, OUT next_log_id text, OUT snapshot_hash bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_read'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.snapshot(doc text, log_id text,
	after_key bytea DEFAULT NULL, max_rows integer DEFAULT 10000,
	OUT key bytea, OUT value bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_snapshot'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.snapshot_info(doc text, log_id text,
	OUT log_id text, OUT base_lsn bigint, OUT snapshot_hash bytea,
	OUT key_count bigint, OUT key_bytes bigint, OUT client_count bigint,
	OUT clients jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_snapshot_info'
LANGUAGE C STABLE ROWS 1;

CREATE FUNCTION synclog.snapshot_clients(doc text, log_id text,
	OUT client_id text, OUT client_seq bigint, OUT client_lsn bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_snapshot_clients'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.channel(doc text)
RETURNS text
AS 'MODULE_PATHNAME', 'synclog_channel'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Compaction ----------------------------------------------------------------

CREATE FUNCTION synclog.compact(doc text)
RETURNS text
AS 'MODULE_PATHNAME', 'synclog_compact'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.gc()
RETURNS bigint
AS 'MODULE_PATHNAME', 'synclog_gc'
LANGUAGE C VOLATILE;

-- The snapshot hash in SQL ---------------------------------------------------

CREATE FUNCTION synclog.hash_add_data(state bytea, key bytea, value bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'synclog_hash_add_data'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION synclog.hash_add_client(state bytea, client_id text,
	client_seq bigint, client_lsn bigint)
RETURNS bytea
AS 'MODULE_PATHNAME', 'synclog_hash_add_client'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION synclog.hash_combine(a bytea, b bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'synclog_hash_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION synclog.hash_info(hash bytea,
	OUT algorithm integer, OUT sum text, OUT item_count bigint,
	OUT item_bytes bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'synclog_hash_info'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

/* The hash of the empty state: algorithm 1, zero sum, count and bytes. */
CREATE FUNCTION synclog.empty_hash()
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '\x01'::bytea || decode(repeat('00', 32), 'hex');

-- Hash of a set of data rows; a NULL value counts as an absent key.
CREATE AGGREGATE synclog.state_hash(key bytea, value bytea) (
	SFUNC = synclog.hash_add_data,
	STYPE = bytea,
	INITCOND = '\x010000000000000000000000000000000000000000000000000000000000000000',
	COMBINEFUNC = synclog.hash_combine,
	PARALLEL = SAFE
);

-- Hash of a set of client watermarks.
CREATE AGGREGATE synclog.state_hash(client_id text, client_seq bigint,
	client_lsn bigint) (
	SFUNC = synclog.hash_add_client,
	STYPE = bytea,
	INITCOND = '\x010000000000000000000000000000000000000000000000000000000000000000',
	COMBINEFUNC = synclog.hash_combine,
	PARALLEL = SAFE
);

/*
 * The hash of a log's snapshot recomputed from its rows, independently of
 * the hash the rotation computed incrementally: what a client does after a
 * download, and what a DBA runs to check a document.
 */
CREATE FUNCTION synclog.recompute_hash(doc text, log_id text)
RETURNS bytea
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT synclog.hash_combine(
		(SELECT synclog.state_hash(s.key, s.value)
		   FROM synclog.snapshot(doc, log_id, NULL, 2147483647) s),
		(SELECT synclog.state_hash(c.client_id, c.client_seq, c.client_lsn)
		   FROM synclog.snapshot_clients(doc, log_id) c));
END;

-- Status ----------------------------------------------------------------------

CREATE VIEW synclog.status AS
SELECT d.name AS doc,
	   d.active_log,
	   a.generation,
	   d.active_base AS base_lsn,
	   d.head_lsn,
	   d.head_lsn - d.active_base AS active_entries,
	   d.active_bytes,
	   d.active_since,
	   p.log_id AS previous_log,
	   p.sealed_at AS previous_sealed_at,
	   (SELECT count(*) FROM synclog.log r
		 WHERE r.doc_id = d.doc_id AND r.state = 'retired') AS retired_logs
  FROM synclog.doc d
  JOIN synclog.log a ON a.log_id = d.active_log
  LEFT JOIN synclog.log p ON p.doc_id = d.doc_id AND p.state = 'previous';

-- Nothing is granted to PUBLIC; see README.md, "Access".
REVOKE ALL ON ALL TABLES IN SCHEMA synclog FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA synclog FROM PUBLIC;
