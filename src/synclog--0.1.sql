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
 * One row per document.  Appends do not write it: the head of the log is
 * the newest entry (see synclog.doc_head), and what orders appends is a
 * row lock on it (FOR NO KEY UPDATE, see append.c), not an update.  The
 * row changes when a rotation switches logs, when a policy is set, and at
 * most twice per log from an append:
 *  due             - set by the append that crosses the entry or byte
 *                    threshold
 *  first_append_at - time of the first append since the last rotation
 * Both are indexed (partial indexes), so the worker finds due documents by
 * index instead of scanning them all.
 * The rotate_* columns are per-document overrides of the synclog.rotate_*
 * settings (NULL: use the setting); auto_rotate = false exempts the
 * document from automatic rotation.
 * name is compared byte by byte (COLLATE "C"): a document id is an
 * identifier, not prose, so its uniqueness and order must not depend on the
 * database's locale, and every append looks it up, which strcoll() in a
 * linguistic locale would make several times dearer.
 */
CREATE TABLE synclog.doc (
	doc_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name		text COLLATE "C" NOT NULL UNIQUE,
	active_log	text NOT NULL,
	active_base bigint NOT NULL DEFAULT 0 CHECK (active_base >= 0),
	active_since timestamptz NOT NULL DEFAULT now(),
	created_at	timestamptz NOT NULL DEFAULT now(),
	due			boolean NOT NULL DEFAULT false,
	first_append_at timestamptz,
	rotate_entries bigint CHECK (rotate_entries >= 0),
	rotate_bytes bigint CHECK (rotate_bytes >= 0),
	rotate_age	interval CHECK (rotate_age >= '0'::interval),
	auto_rotate boolean NOT NULL DEFAULT true
);
CREATE INDEX doc_due_idx ON synclog.doc (doc_id) WHERE due;
CREATE INDEX doc_age_idx ON synclog.doc (first_append_at)
	WHERE first_append_at IS NOT NULL AND rotate_age IS NULL;
CREATE INDEX doc_age_override_idx ON synclog.doc (first_append_at)
	WHERE first_append_at IS NOT NULL AND rotate_age IS NOT NULL;

/*
 * Where clients say they are (synclog.ack).  Retention follows them: a
 * sealed log that an active client still reads is kept (up to a hard
 * maximum).
 */
CREATE TABLE synclog.client_pos (
	doc_id		bigint NOT NULL,
	client_id	text NOT NULL,
	log_id		text NOT NULL,
	lsn			bigint NOT NULL,
	acked_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (doc_id, client_id)
);
CREATE INDEX client_pos_log_idx ON synclog.client_pos (log_id, acked_at);

/*
 * Per-document confinement of roles (see access.c): a role listed here may
 * use only the documents whose id matches one of its patterns (LIKE), and
 * write only through a 'write' row.  Roles not listed are not confined.
 */
CREATE TABLE synclog.doc_grant (
	role_oid	oid NOT NULL,
	pattern		text NOT NULL,
	privilege	text NOT NULL CHECK (privilege IN ('read', 'write')),
	PRIMARY KEY (role_oid, pattern)
);

/*
 * Counters per document, kept apart from synclog.doc so that bumping them
 * never waits on the row lock appends hold.
 */
CREATE TABLE synclog.doc_stats (
	doc_id		bigint PRIMARY KEY,
	rotations	bigint NOT NULL DEFAULT 0,
	logs_collected bigint NOT NULL DEFAULT 0,
	marker_switches bigint NOT NULL DEFAULT 0,
	downloads	bigint NOT NULL DEFAULT 0,
	cut_off		bigint NOT NULL DEFAULT 0
);

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
 * log_bytes is the delta bytes of the entry's log up to and including this
 * entry: the newest entry carries its log's size (the byte threshold of
 * the rotation policy), so no per-document counter has to be updated.
 */
CREATE TABLE synclog.entry (
	doc_id		bigint NOT NULL,
	lsn			bigint NOT NULL CHECK (lsn > 0),
	log_bytes	bigint NOT NULL CHECK (log_bytes >= 0),
	delta		bytea NOT NULL,
	client_id	text,
	client_seq	bigint,
	PRIMARY KEY (doc_id, lsn),
	CHECK ((client_id IS NULL) = (client_seq IS NULL))
);
/*
 * Large deltas are stored out of line but not compressed, so that an append
 * spends no CPU on compression: a delta is written once, read whole by
 * readers and by the fold, and deleted with its log.  (State values are
 * copied into synclog.kv, which compresses them as usual.)
 */
ALTER TABLE synclog.entry ALTER COLUMN delta SET STORAGE EXTERNAL;
CREATE INDEX entry_client_idx ON synclog.entry (doc_id, client_id, lsn)
	WHERE client_id IS NOT NULL;

/*
 * Versioned document state, written only by rotations: (ns, key) had a
 * value from LSN lsn on.  The snapshot at LSN s is, per key, the newest
 * version at or below s.  ns 1 holds data keys, ns 2 the per-client
 * watermarks (key = client id, value = seq and LSN).  kind:
 *  'v' - value holds a copy of the value: a version never points into a
 *        log entry, so collecting a log can delete all its entries
 *  'd' - the key was deleted
 * item_hash is the key's item hash and size (u64le lo, u64le hi, u64le
 * klen + vlen; PROTOCOL.md), so that a rotation can take an old value out
 * of the snapshot hash without reading it.
 */
CREATE TABLE synclog.kv (
	doc_id		bigint NOT NULL,
	ns			smallint NOT NULL CHECK (ns IN (1, 2)),
	key			bytea NOT NULL,
	lsn			bigint NOT NULL,
	kind		"char" NOT NULL CHECK (kind IN ('v', 'd')),
	value		bytea,
	item_hash	bytea,
	CHECK ((kind = 'v') = (value IS NOT NULL)),
	CHECK ((kind = 'd') = (item_hash IS NULL))
);
/*
 * Newest version first, as both the fold and a snapshot page look a key up.
 * gc reaches the versions a collected log superseded through it too, key by
 * key (the keys come from the log's entries), so no (doc_id, lsn) index is
 * needed: such an index kept sparse pages for old LSN ranges.
 */
CREATE UNIQUE INDEX kv_key_idx ON synclog.kv (doc_id, ns, key, lsn DESC);

/*
 * Each document with the head of its log: the newest entry's LSN (or the
 * active log's base while that log is empty) and the active log's bytes.
 * Internal, like the tables; one index probe per document.
 */
CREATE VIEW synclog.doc_head AS
SELECT d.*,
	   greatest(d.active_base, e.lsn) AS head_lsn,
	   CASE WHEN e.lsn > d.active_base THEN e.log_bytes ELSE 0 END AS active_bytes
  FROM synclog.doc d
  LEFT JOIN LATERAL (SELECT x.lsn, x.log_bytes FROM synclog.entry x
					  WHERE x.doc_id = d.doc_id ORDER BY x.lsn DESC LIMIT 1) e ON true;

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

CREATE FUNCTION synclog.compact_due(max_docs integer DEFAULT 100)
RETURNS integer
AS 'MODULE_PATHNAME', 'synclog_compact_due'
LANGUAGE C VOLATILE;

-- Policy and retention ------------------------------------------------------

CREATE FUNCTION synclog.set_policy(doc text, rotate_entries bigint DEFAULT NULL,
	rotate_bytes bigint DEFAULT NULL, rotate_age interval DEFAULT NULL,
	auto_rotate boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_set_policy'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.clear_policy(doc text)
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_clear_policy'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.ack(doc text, client_id text, log_id text, lsn bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_ack'
LANGUAGE C VOLATILE;

-- Access -----------------------------------------------------------------------

CREATE FUNCTION synclog.grant_doc(role regrole, pattern text,
	privilege text DEFAULT 'read')
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_grant_doc'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.revoke_doc(role regrole, pattern text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'synclog_revoke_doc'
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
		 WHERE r.doc_id = d.doc_id AND r.state = 'retired') AS retired_logs,
	   d.due,
	   d.first_append_at,
	   d.auto_rotate,
	   d.rotate_entries,
	   d.rotate_bytes,
	   d.rotate_age
  FROM synclog.doc_head d
  JOIN synclog.log a ON a.log_id = d.active_log
  LEFT JOIN synclog.log p ON p.doc_id = d.doc_id AND p.state = 'previous';

/*
 * Counters per document.  downloads counts clients that reached a new log
 * other than by its predecessor's marker; cut_off counts clients whose log
 * was collected while they were still in it (retention too short for them).
 */
CREATE VIEW synclog.stats AS
SELECT d.name AS doc,
	   coalesce(s.rotations, 0) AS rotations,
	   coalesce(s.logs_collected, 0) AS logs_collected,
	   coalesce(s.marker_switches, 0) AS marker_switches,
	   coalesce(s.downloads, 0) AS downloads,
	   coalesce(s.cut_off, 0) AS cut_off,
	   (SELECT count(*) FROM synclog.client_pos c WHERE c.doc_id = d.doc_id) AS clients
  FROM synclog.doc d
  LEFT JOIN synclog.doc_stats s USING (doc_id);

CREATE VIEW synclog.stats_total AS
SELECT count(*) AS docs,
	   coalesce(sum(rotations), 0)::bigint AS rotations,
	   coalesce(sum(logs_collected), 0)::bigint AS logs_collected,
	   coalesce(sum(marker_switches), 0)::bigint AS marker_switches,
	   coalesce(sum(downloads), 0)::bigint AS downloads,
	   coalesce(sum(cut_off), 0)::bigint AS cut_off
  FROM synclog.stats;

/*
 * The tables hold user data, not extension definitions: pg_dump must dump
 * their contents (and the document id sequence) or a logical backup would
 * restore empty documents.
 */
SELECT pg_catalog.pg_extension_config_dump('synclog.doc', '');
SELECT pg_catalog.pg_extension_config_dump('synclog.doc_doc_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('synclog.log', '');
SELECT pg_catalog.pg_extension_config_dump('synclog.entry', '');
SELECT pg_catalog.pg_extension_config_dump('synclog.kv', '');
SELECT pg_catalog.pg_extension_config_dump('synclog.client_pos', '');
SELECT pg_catalog.pg_extension_config_dump('synclog.doc_stats', '');

SELECT pg_catalog.pg_extension_config_dump('synclog.doc_grant', '');

/*
 * The three kinds of users.  Each kind gets EXECUTE on exactly the
 * functions it needs and nothing on the tables: the functions reach the
 * tables as the extension's owner.  Kinds are cumulative.
 */
CREATE FUNCTION synclog.role_functions(kind text)
RETURNS SETOF regprocedure
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
	SELECT f::regprocedure FROM unnest(ARRAY[
		'synclog.read(text,text,bigint,integer,integer)',
		'synclog.current_log(text)',
		'synclog.snapshot(text,text,bytea,integer)',
		'synclog.snapshot_info(text,text)',
		'synclog.snapshot_clients(text,text)',
		'synclog.recompute_hash(text,text)',
		'synclog.ack(text,text,text,bigint)',
		'synclog.channel(text)',
		'synclog.encode_delta(bytea[],bytea[])',
		'synclog.decode_delta(bytea)',
		'synclog.hash_add_data(bytea,bytea,bytea)',
		'synclog.hash_add_client(bytea,text,bigint,bigint)',
		'synclog.hash_combine(bytea,bytea)',
		'synclog.hash_info(bytea)',
		'synclog.empty_hash()',
		'synclog.state_hash(bytea,bytea)',
		'synclog.state_hash(text,bigint,bigint)']) f
	 WHERE kind IN ('reader', 'writer', 'admin')
	UNION ALL
	SELECT f::regprocedure FROM unnest(ARRAY[
		'synclog.create_doc(text)',
		'synclog.append(text,bytea[],bytea[],text,bigint)',
		'synclog.append_delta(text,bytea,text,bigint)']) f
	 WHERE kind IN ('writer', 'admin')
	UNION ALL
	SELECT f::regprocedure FROM unnest(ARRAY[
		'synclog.drop_doc(text)',
		'synclog.compact(text)',
		'synclog.compact_due(integer)',
		'synclog.gc()',
		'synclog.set_policy(text,bigint,bigint,interval,boolean)',
		'synclog.clear_policy(text)',
		'synclog.grant_doc(regrole,text,text)',
		'synclog.revoke_doc(regrole,text)']) f
	 WHERE kind = 'admin';
END;

/*
 * Grant a role what one kind of user needs: 'reader', 'writer' or 'admin'.
 * Identifiers reach the GRANT through regprocedure and regrole output,
 * which quote them, never as caller text.
 */
CREATE FUNCTION synclog.grant_role(role regrole, kind text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f regprocedure;
BEGIN
	IF role IS NULL OR kind IS NULL THEN
		RAISE EXCEPTION 'role and kind must not be NULL' USING ERRCODE = '22004';
	END IF;
	IF kind NOT IN ('reader', 'writer', 'admin') THEN
		RAISE EXCEPTION 'kind must be reader, writer or admin, got "%"', kind
			USING ERRCODE = '22023';
	END IF;
	EXECUTE format('GRANT USAGE ON SCHEMA synclog TO %s', role);
	FOR f IN SELECT * FROM synclog.role_functions(kind) LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
	END LOOP;
	IF kind = 'admin' THEN
		EXECUTE format('GRANT SELECT ON synclog.status, synclog.stats, synclog.stats_total TO %s', role);
	END IF;
END $$;

-- Take back everything grant_role gave (and any document confinement).
CREATE FUNCTION synclog.revoke_role(role regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f regprocedure;
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = '22004';
	END IF;
	FOR f IN SELECT * FROM synclog.role_functions('admin') LOOP
		EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', f, role);
	END LOOP;
	EXECUTE format('REVOKE SELECT ON synclog.status, synclog.stats, synclog.stats_total FROM %s', role);
	EXECUTE format('REVOKE USAGE ON SCHEMA synclog FROM %s', role);
	PERFORM synclog.revoke_doc(role);
END $$;

-- Nothing is granted to PUBLIC; see README.md, "Access".
REVOKE ALL ON ALL TABLES IN SCHEMA synclog FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA synclog FROM PUBLIC;
