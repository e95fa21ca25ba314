/*
 * synclog--0.1--0.2.sql
 *
 * From 0.1 to 0.2.  A fresh CREATE EXTENSION runs synclog--0.1.sql and
 * then this script, so a new database and an upgraded one have the same
 * objects by construction (test/t/006_upgrade.pl also compares them).
 *
 * The data stays where it is: every change below keeps the rows of a 0.1
 * database readable, and the hashes stored with them stay valid.
 */

-- complain if script is sourced in psql, rather than in ALTER EXTENSION
\echo Use "ALTER EXTENSION synclog UPDATE TO '0.2'" to load this file. \quit

/*
 * synclog's functions reach its tables as the owner of schema synclog.  A
 * schema that existed before CREATE EXTENSION and belongs to another role
 * would make that role the one every query runs as, and let it drop or
 * replace the extension's objects: refuse it.
 */
DO $$
DECLARE
	owner regrole;
BEGIN
	SELECT nspowner::regrole INTO owner FROM pg_catalog.pg_namespace WHERE nspname = 'synclog';
	IF owner::oid <> (SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'synclog') THEN
		RAISE EXCEPTION 'schema "synclog" is owned by role %, not by the owner of extension "synclog"', owner
			USING ERRCODE = '42501',
				  HINT = 'Drop or rename the existing schema "synclog" before CREATE EXTENSION, or make the installing role its owner.';
	END IF;
END $$;

-- Access (README.md, "Access") ---------------------------------------------

/*
 * Confinement rows name their role as regrole: pg_dump writes the role's
 * name, so a restore into another cluster (where the role has another OID)
 * keeps the confinement.  Rows of roles dropped since are removed; a
 * pattern's _ is now a literal character (only % is a wildcard, and a
 * backslash escapes), which can only narrow what an old row allowed.
 */
DELETE FROM synclog.doc_grant g
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = g.role_oid);
ALTER TABLE synclog.doc_grant RENAME COLUMN role_oid TO role;
ALTER TABLE synclog.doc_grant ALTER COLUMN role TYPE regrole;

CREATE FUNCTION synclog.can_read(doc text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'synclog_can_read'
LANGUAGE C STABLE PARALLEL SAFE;

-- NOTIFY (notify.c, PROTOCOL.md section 12) ----------------------------------

/*
 * The database's channel key: channels are an HMAC of the document id under
 * it.  Not dumped: a restored database makes a key of its own, and clients
 * ask synclog.channel() after each connect.
 */
CREATE TABLE synclog.channel_key (
	one			boolean PRIMARY KEY DEFAULT true CHECK (one),
	key			bytea NOT NULL CHECK (length(key) = 32),
	set_at		timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION synclog.rotate_channel_key()
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_rotate_channel_key'
LANGUAGE C VOLATILE;

SELECT synclog.rotate_channel_key();

-- The channel now depends on the key and on the caller's access.
ALTER FUNCTION synclog.channel(text) STABLE PARALLEL RESTRICTED;

-- Views show only the documents the caller may read ------------------------

-- synclog.status: see "Monitoring" at the end of this script.

CREATE OR REPLACE VIEW synclog.stats AS
SELECT d.name AS doc,
	   coalesce(s.rotations, 0) AS rotations,
	   coalesce(s.logs_collected, 0) AS logs_collected,
	   coalesce(s.marker_switches, 0) AS marker_switches,
	   coalesce(s.downloads, 0) AS downloads,
	   coalesce(s.cut_off, 0) AS cut_off,
	   (SELECT count(*) FROM synclog.client_pos c WHERE c.doc_id = d.doc_id) AS clients
  FROM synclog.doc d
  LEFT JOIN synclog.doc_stats s USING (doc_id)
 WHERE synclog.can_read(d.name);

-- Kinds of users: the new functions -----------------------------------------

CREATE OR REPLACE FUNCTION synclog.role_functions(kind text)
RETURNS SETOF regprocedure
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
	SELECT f::regprocedure FROM unnest(ARRAY[
		'synclog.read(text,text,bigint,integer,integer)',
		-- created further down in this script (protocol version 2)
		'synclog.read2(text,text,bigint,bytea,integer,integer,text[])',
		'synclog.base_chain(text,text)',
		'synclog.chain_at(text,text,bigint)',
		'synclog.ack2(text,text,text,bigint,bytea)',
		'synclog.protocol_version()',
		'synclog.chain_next(bytea,bigint,bytea,text,bigint)',
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
		'synclog.can_read(text)',
		-- created at the end of this script
		'synclog.rotation_due(bigint,bigint,timestamptz,bigint,bigint,interval,boolean)',
		'synclog.settings()',
		'synclog.paused()']) f
	 WHERE kind IN ('reader', 'writer', 'admin', 'monitor')
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
		'synclog.revoke_doc(regrole,text)',
		'synclog.rotate_channel_key()',
		-- created at the end of this script
		'synclog.forget_client(text,text)',
		'synclog.pause(text)',
		'synclog.resume()']) f
	 WHERE kind = 'admin';
END;

/*
 * Roles granted a kind under 0.1 get what the kind has gained: those with
 * EXECUTE on synclog.read (every kind) get can_read, those with EXECUTE on
 * synclog.drop_doc (admins) get rotate_channel_key.
 */
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN SELECT DISTINCT (a).grantee::regrole AS role, n.fn
			   FROM (VALUES ('synclog.read(text,text,bigint,integer,integer)'::regprocedure,
							 'synclog.can_read(text)'::regprocedure),
							('synclog.drop_doc(text)'::regprocedure,
							 'synclog.rotate_channel_key()'::regprocedure)) n(marker, fn),
					LATERAL (SELECT aclexplode(proacl) a FROM pg_catalog.pg_proc
							  WHERE oid = n.marker) x
			  WHERE (a).grantee <> 0 AND (a).privilege_type = 'EXECUTE'
				AND (a).grantee <> (SELECT nspowner FROM pg_catalog.pg_namespace
									 WHERE nspname = 'synclog')
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', g.fn, g.role);
	END LOOP;
END $$;

REVOKE ALL ON synclog.channel_key FROM PUBLIC;
REVOKE ALL ON FUNCTION synclog.can_read(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION synclog.rotate_channel_key() FROM PUBLIC;

-- Clients per document (synclog.max_clients_per_doc) -----------------------

/*
 * How many clients the document keeps a watermark for: raised by the
 * append that is a client's first in the document (under the document's
 * row lock), so that the limit costs appends nothing else.  A 0.1 database
 * gets its count from its data: the clients of the active log's entries and
 * those whose watermark the state holds.
 */
ALTER TABLE synclog.doc ADD COLUMN clients bigint NOT NULL DEFAULT 0
	CHECK (clients >= 0);
UPDATE synclog.doc d SET clients = c.n
  FROM (SELECT doc_id, count(*) AS n FROM (
		  SELECT e.doc_id,
				 convert_to(e.client_id, pg_catalog.getdatabaseencoding()) AS client
			FROM synclog.entry e WHERE e.client_id IS NOT NULL
		  UNION
		  SELECT k.doc_id, k.key FROM synclog.kv k
		   WHERE k.ns = 2 AND k.kind = 'v') x
		 GROUP BY doc_id) c
 WHERE c.doc_id = d.doc_id;

/*
 * The role that recorded a client's position: only it may move the
 * position (and with it retention and the counters).  NULL for positions
 * recorded by 0.1, claimed by the next role that acks them.
 */
ALTER TABLE synclog.client_pos ADD COLUMN owner regrole;

-- Monitoring: where each client is ------------------------------------------

/*
 * One row per client position (synclog.ack) of a document the caller may
 * read: its log and LSN, how far behind the head it is in entries and in
 * delta bytes, and whether it sits in a retired log (where, while it acks
 * within synclog.client_activity_window, it keeps the log from being
 * collected until synclog.retention_max).  Bytes come from the running
 * byte counts the entries carry: two index probes per log behind.
 */
CREATE VIEW synclog.clients AS
SELECT d.name AS doc,
	   c.client_id,
	   c.owner,
	   c.log_id,
	   l.state AS log_state,
	   c.lsn,
	   c.acked_at,
	   h.head_lsn - c.lsn AS lag_entries,
	   (SELECT coalesce(sum(f.log_bytes), 0)
		  FROM synclog.log l2
		  CROSS JOIN LATERAL (SELECT e.log_bytes FROM synclog.entry e
							   WHERE e.doc_id = l2.doc_id
								 AND e.lsn = coalesce(l2.end_lsn, h.head_lsn)
								 AND e.lsn > l2.base_lsn) f
		 WHERE l2.doc_id = c.doc_id AND l2.generation >= l.generation)
	   - coalesce((SELECT e.log_bytes FROM synclog.entry e
					WHERE e.doc_id = c.doc_id AND e.lsn = c.lsn AND c.lsn > l.base_lsn), 0)
		 AS lag_bytes,
	   l.state = 'retired' AS in_retired_log
  FROM synclog.client_pos c
  JOIN synclog.doc_head h ON h.doc_id = c.doc_id
  JOIN synclog.doc d ON d.doc_id = c.doc_id
  LEFT JOIN synclog.log l ON l.log_id = c.log_id
 WHERE synclog.can_read(d.name);

REVOKE ALL ON synclog.clients FROM PUBLIC;

-- grant_role: messages in PostgreSQL's style --------------------------------

CREATE OR REPLACE FUNCTION synclog.grant_role(role regrole, kind text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f regprocedure;
BEGIN
	IF role IS NULL OR kind IS NULL THEN
		RAISE EXCEPTION 'role and kind must not be NULL' USING ERRCODE = '22004';
	END IF;
	IF kind NOT IN ('reader', 'writer', 'admin', 'monitor') THEN
		RAISE EXCEPTION 'unrecognized kind of user: "%"', kind
			USING ERRCODE = '22023', HINT = 'Use "reader", "writer", "admin" or "monitor".';
	END IF;
	EXECUTE format('GRANT USAGE ON SCHEMA synclog TO %s', role);
	FOR f IN SELECT * FROM synclog.role_functions(kind) LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
	END LOOP;
	IF kind IN ('admin', 'monitor') THEN
		EXECUTE format('GRANT SELECT ON synclog.status, synclog.stats, synclog.stats_total, synclog.clients, synclog.worker_status TO %s', role);
	END IF;
END $$;

-- Take back everything grant_role gave (and any document confinement).
CREATE OR REPLACE FUNCTION synclog.revoke_role(role regrole)
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
	EXECUTE format('REVOKE SELECT ON synclog.status, synclog.stats, synclog.stats_total, synclog.clients, synclog.worker_status FROM %s', role);
	EXECUTE format('REVOKE USAGE ON SCHEMA synclog FROM %s', role);
	PERFORM synclog.revoke_doc(role);
END $$;

-- DROP EXTENSION with documents in it takes CASCADE (drop_guard.c) ------------

CREATE FUNCTION synclog.drop_guard()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'synclog_drop_guard'
LANGUAGE C;
REVOKE ALL ON FUNCTION synclog.drop_guard() FROM PUBLIC;

CREATE EVENT TRIGGER synclog_drop_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION')
	EXECUTE FUNCTION synclog.drop_guard();

-- Roles that read the status views under 0.1 (admins) read the new one too.
DO $$
DECLARE
	r regrole;
BEGIN
	FOR r IN SELECT DISTINCT (a).grantee::regrole
			   FROM (SELECT aclexplode(relacl) a FROM pg_catalog.pg_class
					  WHERE oid = 'synclog.status'::regclass) x
			  WHERE (a).grantee <> 0 AND (a).privilege_type = 'SELECT'
				AND (a).grantee <> (SELECT nspowner FROM pg_catalog.pg_namespace
									 WHERE nspname = 'synclog')
	LOOP
		EXECUTE format('GRANT SELECT ON synclog.clients TO %s', r);
	END LOOP;
END $$;

-- Protocol version 2: positions that identify history (PROTOCOL.md 4a) and
-- atomic groups (PROTOCOL.md 3a) ------------------------------------------------

CREATE FUNCTION synclog.protocol_version()
RETURNS integer
AS 'MODULE_PATHNAME', 'synclog_protocol_version'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION synclog.chain_next(prev bytea, lsn bigint, delta bytea,
	client_id text DEFAULT NULL, client_seq bigint DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'synclog_chain_next'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

/*
 * Every entry carries its chain value, and the LSN of its group's first
 * entry unless it is that entry itself (NULL: most entries start their
 * group, and the NULL costs no space).  Entries written before 0.2 get
 * their chain values here, in LSN order per document, starting from 16
 * zero bytes before the oldest entry still stored (the older ones were
 * collected; no client can stand there any more), and form one group each:
 * which transaction wrote them is not known any longer.
 */
CREATE AGGREGATE synclog.chain_fill(bigint, bytea, text, bigint) (
	SFUNC = synclog.chain_next,
	STYPE = bytea,
	INITCOND = '\x00000000000000000000000000000000'
);

ALTER TABLE synclog.entry ADD COLUMN chain bytea, ADD COLUMN group_lsn bigint;
UPDATE synclog.entry e SET chain = c.chain
  FROM (SELECT doc_id, lsn,
			   synclog.chain_fill(lsn, delta, client_id, client_seq)
				 OVER (PARTITION BY doc_id ORDER BY lsn) AS chain
		  FROM synclog.entry) c
 WHERE e.doc_id = c.doc_id AND e.lsn = c.lsn;
ALTER TABLE synclog.entry
	ALTER chain SET NOT NULL,
	ADD CHECK (octet_length(chain) = 16),
	ADD CHECK (group_lsn > 0 AND group_lsn < lsn);

/*
 * A log's base_chain is the chain value at its base LSN (where a client
 * that downloaded its snapshot stands); end_chain, once it is sealed, the
 * value at its end LSN (carried by its end-log marker).
 */
ALTER TABLE synclog.log
	ADD COLUMN base_chain bytea NOT NULL
		DEFAULT '\x00000000000000000000000000000000'
		CHECK (octet_length(base_chain) = 16),
	ADD COLUMN end_chain bytea CHECK (octet_length(end_chain) = 16);
UPDATE synclog.log l SET
	base_chain = coalesce((SELECT e.chain FROM synclog.entry e
							WHERE e.doc_id = l.doc_id AND e.lsn <= l.base_lsn
							ORDER BY e.lsn DESC LIMIT 1), l.base_chain),
	end_chain = CASE WHEN l.end_lsn IS NOT NULL THEN
		coalesce((SELECT e.chain FROM synclog.entry e
				   WHERE e.doc_id = l.doc_id AND e.lsn <= l.end_lsn
				   ORDER BY e.lsn DESC LIMIT 1),
				 '\x00000000000000000000000000000000') END;
DROP AGGREGATE synclog.chain_fill(bigint, bytea, text, bigint);

CREATE FUNCTION synclog.read2(doc text, log_id text, after_lsn bigint,
	after_chain bytea, max_entries integer DEFAULT 1000,
	max_bytes integer DEFAULT 8388608, accept text[] DEFAULT NULL,
	OUT lsn bigint, OUT kind text, OUT delta bytea, OUT client_id text,
	OUT client_seq bigint, OUT chain bytea, OUT group_lsn bigint,
	OUT group_end boolean, OUT next_log_id text, OUT snapshot_hash bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_read2'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.base_chain(doc text, log_id text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'synclog_base_chain'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.chain_at(doc text, log_id text, lsn bigint)
RETURNS bytea
AS 'MODULE_PATHNAME', 'synclog_chain_at'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.ack2(doc text, client_id text, log_id text, lsn bigint,
	chain bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_ack'
LANGUAGE C VOLATILE;

-- Pausing compaction while a restore loads the tables (pause.c) ----------------

/*
 * Not marked for pg_dump: a pause belongs to the database it was set in,
 * not to its copies.
 */
CREATE TABLE synclog.pause (
	one			boolean PRIMARY KEY DEFAULT true CHECK (one),
	paused_at	timestamptz NOT NULL DEFAULT now(),
	paused_by	regrole NOT NULL,
	reason		text
);
REVOKE ALL ON synclog.pause FROM PUBLIC;

CREATE FUNCTION synclog.pause(reason text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'synclog_pause'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.resume()
RETURNS boolean
AS 'MODULE_PATHNAME', 'synclog_resume'
LANGUAGE C VOLATILE;

CREATE FUNCTION synclog.paused(OUT paused boolean, OUT reason text,
	OUT since timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'synclog_paused'
LANGUAGE C STABLE;

REVOKE ALL ON FUNCTION synclog.protocol_version(), synclog.chain_next(bytea,bigint,bytea,text,bigint),
	synclog.read2(text,text,bigint,bytea,integer,integer,text[]),
	synclog.base_chain(text,text), synclog.chain_at(text,text,bigint),
	synclog.ack2(text,text,text,bigint,bytea),
	synclog.pause(text), synclog.resume(), synclog.paused() FROM PUBLIC;

/*
 * Roles granted a kind before this point get what the kind has gained:
 * those with EXECUTE on synclog.read (every kind but monitor) the version 2
 * reads, those with EXECUTE on synclog.can_read (every kind) paused(),
 * those with EXECUTE on synclog.drop_doc (admins) pause and resume.
 */
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN SELECT DISTINCT (a).grantee::regrole AS role, n2.fn
			   FROM (VALUES ('synclog.read(text,text,bigint,integer,integer)'::regprocedure,
							 ARRAY['synclog.read2(text,text,bigint,bytea,integer,integer,text[])',
								   'synclog.base_chain(text,text)',
								   'synclog.chain_at(text,text,bigint)',
								   'synclog.ack2(text,text,text,bigint,bytea)',
								   'synclog.protocol_version()',
								   'synclog.chain_next(bytea,bigint,bytea,text,bigint)']),
							('synclog.can_read(text)'::regprocedure,
							 ARRAY['synclog.paused()']),
							('synclog.drop_doc(text)'::regprocedure,
							 ARRAY['synclog.pause(text)', 'synclog.resume()'])) n(marker, fns),
					LATERAL unnest(n.fns) AS n2(fn),
					LATERAL (SELECT aclexplode(proacl) a FROM pg_catalog.pg_proc
							  WHERE oid = n.marker) x
			  WHERE (a).grantee <> 0 AND (a).privilege_type = 'EXECUTE'
				AND (a).grantee <> (SELECT nspowner FROM pg_catalog.pg_namespace
									 WHERE nspname = 'synclog')
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', g.fn::regprocedure, g.role);
	END LOOP;
END $$;

-- Forgetting clients: retire entries (issues 14 and 18; forget.c) -----------

/*
 * A retire entry (client_seq -1, the empty delta; PROTOCOL.md section 4)
 * removes a client's watermark from the state, after which its id is new
 * to the document.  Only the server writes them: forget_client for an
 * administrator, and the background worker for clients idle longer than
 * synclog.client_retention.  Appends keep refusing a negative client_seq.
 */
CREATE FUNCTION synclog.forget_client(doc text, client_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'synclog_forget_client'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synclog.forget_client(text, text) FROM PUBLIC;
-- synclog.role_functions('admin') lists it (above, under "Kinds of users").

-- Monitoring: the worker's state, due documents, retired logs (issue 18) -----

/*
 * Whether a document is due for automatic rotation under the current
 * settings (policy.c): what synclog.status shows as due, with the age
 * threshold (rotate_age) as well as the entry and byte thresholds.
 */
CREATE FUNCTION synclog.rotation_due(active_entries bigint, active_bytes bigint,
	first_append_at timestamptz, rotate_entries bigint, rotate_bytes bigint,
	rotate_age interval, auto_rotate boolean)
RETURNS boolean
AS 'MODULE_PATHNAME', 'synclog_rotation_due'
LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION synclog.rotation_due(bigint, bigint, timestamptz, bigint,
	bigint, interval, boolean) FROM PUBLIC;

/*
 * synclog's settings, typed (synclog.c): what monitoring queries compare
 * the views with.  Unlike current_setting('synclog.retention'), it works
 * in a session that has not loaded the library yet.
 */
CREATE FUNCTION synclog.settings(OUT retention interval, OUT retention_max interval,
	OUT client_activity_window interval, OUT client_retention interval,
	OUT max_clients_per_doc integer, OUT naptime interval, OUT worker_paused boolean,
	OUT rotate_entries bigint, OUT rotate_bytes bigint, OUT rotate_age interval)
RETURNS record
AS 'MODULE_PATHNAME', 'synclog_settings'
LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION synclog.settings() FROM PUBLIC;

/*
 * The background worker's state in this database (worker_state.c): one
 * row, written by the per-database worker when a round starts, after each
 * task that fails, and when the round ends.  The counters only grow.  Not
 * dumped: it describes this database's worker, and a restored database
 * starts afresh (with the row below).
 */
CREATE TABLE synclog.worker_state (
	one			boolean PRIMARY KEY DEFAULT true CHECK (one),
	state		text NOT NULL DEFAULT 'never run'
		CHECK (state IN ('never run', 'running', 'idle')),
	pid			integer,
	round_started_at timestamptz,
	round_finished_at timestamptz,
	rounds		bigint NOT NULL DEFAULT 0,
	rotations	bigint NOT NULL DEFAULT 0,
	rotations_failed bigint NOT NULL DEFAULT 0,
	collections bigint NOT NULL DEFAULT 0,
	collections_failed bigint NOT NULL DEFAULT 0,
	vacuums		bigint NOT NULL DEFAULT 0,
	vacuums_failed bigint NOT NULL DEFAULT 0,
	clients_retired bigint NOT NULL DEFAULT 0,
	positions_expired bigint NOT NULL DEFAULT 0,
	clients_failed bigint NOT NULL DEFAULT 0,
	clients_checked_at timestamptz,
	last_error_at timestamptz,
	last_error_task text,
	last_error_doc text,
	last_error_sqlstate text,
	last_error	text
);
INSERT INTO synclog.worker_state DEFAULT VALUES;

/*
 * What a monitoring role reads (README.md, "Monitoring"): the state, the
 * time since the last finished round, the counters and the last failure.
 * The last failure's document and message show only to roles that may
 * read that document.
 */
CREATE VIEW synclog.worker_status AS
SELECT w.state,
	   (SELECT s.worker_paused FROM synclog.settings() s) AS paused,
	   w.pid,
	   w.round_started_at,
	   w.round_finished_at,
	   now() - w.round_finished_at AS since_last_round,
	   w.rounds,
	   w.rotations,
	   w.rotations_failed,
	   w.collections,
	   w.collections_failed,
	   w.vacuums,
	   w.vacuums_failed,
	   w.clients_retired,
	   w.positions_expired,
	   w.clients_failed,
	   w.clients_checked_at,
	   w.last_error_at,
	   w.last_error_task,
	   w.last_error_sqlstate,
	   CASE WHEN w.last_error_doc IS NULL OR synclog.can_read(w.last_error_doc)
			THEN w.last_error_doc END AS last_error_doc,
	   CASE WHEN w.last_error_doc IS NULL OR synclog.can_read(w.last_error_doc)
			THEN w.last_error END AS last_error
  FROM synclog.worker_state w;
REVOKE ALL ON synclog.worker_status FROM PUBLIC;

/*
 * status shows only documents the caller may read; due honours all three
 * thresholds (in 0.1 it was the flag appends set, which knows entries and
 * bytes only); and per document the oldest retired log's sealing time and
 * age, the delta bytes the retired logs hold, and the clients with a
 * watermark (doc.clients; doc_head's d.* predates that column).
 */
CREATE OR REPLACE VIEW synclog.status AS
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
	   r.logs AS retired_logs,
	   synclog.rotation_due(d.head_lsn - d.active_base, d.active_bytes,
			d.first_append_at, d.rotate_entries, d.rotate_bytes, d.rotate_age,
			d.auto_rotate) AS due,
	   d.first_append_at,
	   d.auto_rotate,
	   d.rotate_entries,
	   d.rotate_bytes,
	   d.rotate_age,
	   r.oldest_sealed_at AS oldest_retired_sealed_at,
	   now() - r.oldest_sealed_at AS oldest_retired_age,
	   r.bytes AS retired_bytes,
	   (SELECT c.clients FROM synclog.doc c WHERE c.doc_id = d.doc_id) AS watermarks
  FROM synclog.doc_head d
  JOIN synclog.log a ON a.log_id = d.active_log
  LEFT JOIN synclog.log p ON p.doc_id = d.doc_id AND p.state = 'previous'
  CROSS JOIN LATERAL (
	SELECT count(*) AS logs, min(l.sealed_at) AS oldest_sealed_at,
		   coalesce(sum(e.log_bytes), 0)::bigint AS bytes
	  FROM synclog.log l
	  LEFT JOIN synclog.entry e ON e.doc_id = l.doc_id AND e.lsn = l.end_lsn
	 WHERE l.doc_id = d.doc_id AND l.state = 'retired') r
 WHERE synclog.can_read(d.name);

/*
 * Roles granted a kind before this point get what it gained above: admins
 * (EXECUTE on synclog.drop_doc) forget_client, every kind (EXECUTE on
 * synclog.can_read) rotation_due and settings, readers of synclog.status
 * (admins and monitors) the view worker_status.
 */
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN SELECT DISTINCT (a).grantee::regrole AS role, n.what
			   FROM (VALUES ('synclog.drop_doc(text)'::regprocedure::oid, 'pg_proc'::regclass,
							 'FUNCTION synclog.forget_client(text, text)'),
							('synclog.can_read(text)'::regprocedure::oid, 'pg_proc'::regclass,
							 'FUNCTION synclog.rotation_due(bigint, bigint, timestamptz, bigint, bigint, interval, boolean)'),
							('synclog.can_read(text)'::regprocedure::oid, 'pg_proc'::regclass,
							 'FUNCTION synclog.settings()'),
							('synclog.status'::regclass::oid, 'pg_class'::regclass,
							 'synclog.worker_status')) n(marker, catalog, what),
					LATERAL (SELECT aclexplode(proacl) a FROM pg_catalog.pg_proc
							  WHERE n.catalog = 'pg_proc'::regclass AND oid = n.marker
							 UNION ALL
							 SELECT aclexplode(relacl) FROM pg_catalog.pg_class
							  WHERE n.catalog = 'pg_class'::regclass AND oid = n.marker) x
			  WHERE (a).grantee <> 0
				AND (a).privilege_type IN ('EXECUTE', 'SELECT')
				AND (a).grantee <> (SELECT nspowner FROM pg_catalog.pg_namespace
									 WHERE nspname = 'synclog')
	LOOP
		EXECUTE format('GRANT %s ON %s TO %s',
					   CASE WHEN g.what LIKE 'FUNCTION %' THEN 'EXECUTE' ELSE 'SELECT' END,
					   g.what, g.role);
	END LOOP;
END $$;

-- Compressed deltas and snapshot values (issue 16) --------------------------

/*
 * Deltas: an append stores a delta compressed itself when that pays
 * (delta_store.c, PROTOCOL.md section 10, "Version 2 (compressed)
 * deltas"), so synclog.entry.delta keeps STORAGE EXTERNAL: PostgreSQL must
 * not try to compress those bytes again.  Nothing here changes the
 * entries already stored: they stay version 1, and every reader gets
 * version 1 bytes of old and new entries alike.
 *
 * Snapshot values: synclog.kv.value is compressed by PostgreSQL's TOAST,
 * with lz4 instead of pglz where the server was built with it.  On 4 KiB
 * pages of a SQLite page store lz4 stores them in as many bytes on disk as
 * pglz, writes them (at a rotation) twice as fast and reads them (for a
 * snapshot page) two to three times as fast (BENCHMARKS.md, area 15).
 * Values written before keep pglz; both read back the same.
 */
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_settings
				WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE synclog.kv ALTER COLUMN value SET COMPRESSION lz4;
	END IF;
END $$;

-- Range buckets, range hashes and catching up (issue 11; range.c, catch_up.c) --

/*
 * The bucket of an item (PROTOCOL.md section 11a): the top 12 bits of
 * XXH3_64(ns || u32le(len(key)) || key), 0 to 4095.  It depends on the key
 * only, so a value change never moves an item.
 */
CREATE FUNCTION synclog.bucket(ns smallint, key bytea)
RETURNS integer
AS 'MODULE_PATHNAME', 'synclog_bucket'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

/*
 * Range hashes (PROTOCOL.md section 11a), one row per rotation that
 * changed any (range_store.c): at lsn (the rotation's seal, the next
 * log's base) the new range hashes of the buckets it changed, or, in a
 * full row, of every non-empty bucket.  hashes packs, in bucket order,
 * 35 bytes per bucket: u16le bucket, then the bucket's 33-byte hash
 * (PROTOCOL.md section 11).  The range
 * hashes at a base are the newest full row at or below it with the later
 * rows up to it applied; a rotation writes a full row instead of a
 * partial one when the partial rows since the last full one would
 * otherwise hold more buckets than a full row, so reading the hashes at
 * any base costs at most two full rows' worth, and writing them costs, on
 * average, at most twice the buckets the rotations changed.  One row per
 * rotation, at the largest LSN yet: an append to the right edge of the
 * primary key.  gc removes the rows older than the newest full row at or
 * below every retained base (gc.c), drop_doc a document's rows.
 */
CREATE TABLE synclog.range_hash (
	doc_id		bigint NOT NULL,
	lsn			bigint NOT NULL CHECK (lsn > 0),
	full_image	boolean NOT NULL,
	hashes		bytea NOT NULL CHECK (octet_length(hashes) % 35 = 0),
	PRIMARY KEY (doc_id, lsn)
);
-- Hashes do not compress: keep TOAST from trying.
ALTER TABLE synclog.range_hash ALTER COLUMN hashes SET STORAGE EXTERNAL;
SELECT pg_catalog.pg_extension_config_dump('synclog.range_hash', '');
REVOKE ALL ON synclog.range_hash FROM PUBLIC;

/*
 * The range hashes of the logs a 0.1 database still holds, computed from
 * their snapshots (range_store.c): a full row at the base of every log
 * that is not collected.  Used once, here.
 */
CREATE FUNCTION synclog.fill_range_hashes()
RETURNS bigint
AS 'MODULE_PATHNAME', 'synclog_fill_range_hashes'
LANGUAGE C VOLATILE;
SELECT synclog.fill_range_hashes();
DROP FUNCTION synclog.fill_range_hashes();

CREATE FUNCTION synclog.range_hashes(doc text, log_id text, lsn bigint DEFAULT NULL,
	OUT bucket integer, OUT hash bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_range_hashes'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.range(doc text, log_id text, buckets integer[],
	after_ns smallint DEFAULT NULL, after_key bytea DEFAULT NULL,
	max_rows integer DEFAULT 10000, lsn bigint DEFAULT NULL,
	OUT bucket integer, OUT ns smallint, OUT key bytea, OUT value bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_range'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.sync_cost(doc text, log_id text, lsn bigint, chain bytea,
	OUT replay_bytes bigint, OUT catch_up_bytes bigint, OUT snapshot_bytes bigint,
	OUT head_log text, OUT head_lsn bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'synclog_sync_cost'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.catch_up_target(doc text,
	OUT log_id text, OUT lsn bigint, OUT chain bytea, OUT snapshot_hash bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'synclog_catch_up_target'
LANGUAGE C STABLE;

CREATE FUNCTION synclog.catch_up(doc text, log_id text, lsn bigint, chain bytea,
	target_log text, target_lsn bigint, after_ns smallint DEFAULT NULL,
	after_key bytea DEFAULT NULL, max_rows integer DEFAULT 10000,
	OUT ns smallint, OUT key bytea, OUT value bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_catch_up'
LANGUAGE C STABLE;

REVOKE ALL ON FUNCTION synclog.bucket(smallint, bytea),
	synclog.range_hashes(text, text, bigint),
	synclog.range(text, text, integer[], smallint, bytea, integer, bigint),
	synclog.sync_cost(text, text, bigint, bytea),
	synclog.catch_up_target(text),
	synclog.catch_up(text, text, bigint, bytea, text, bigint, smallint, bytea, integer)
	FROM PUBLIC;

-- Kinds of users: readers get the new reads.
CREATE OR REPLACE FUNCTION synclog.role_functions(kind text)
RETURNS SETOF regprocedure
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
	SELECT f::regprocedure FROM unnest(ARRAY[
		'synclog.read(text,text,bigint,integer,integer)',
		'synclog.read2(text,text,bigint,bytea,integer,integer,text[])',
		'synclog.base_chain(text,text)',
		'synclog.chain_at(text,text,bigint)',
		'synclog.ack2(text,text,text,bigint,bytea)',
		'synclog.protocol_version()',
		'synclog.chain_next(bytea,bigint,bytea,text,bigint)',
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
		'synclog.state_hash(text,bigint,bigint)',
		'synclog.bucket(smallint,bytea)',
		'synclog.range_hashes(text,text,bigint)',
		'synclog.range(text,text,integer[],smallint,bytea,integer,bigint)',
		'synclog.sync_cost(text,text,bigint,bytea)',
		'synclog.catch_up_target(text)',
		'synclog.catch_up(text,text,bigint,bytea,text,bigint,smallint,bytea,integer)']) f
	 WHERE kind IN ('reader', 'writer', 'admin')
	UNION ALL
	SELECT f::regprocedure FROM unnest(ARRAY[
		'synclog.can_read(text)',
		'synclog.rotation_due(bigint,bigint,timestamptz,bigint,bigint,interval,boolean)',
		'synclog.settings()',
		'synclog.paused()']) f
	 WHERE kind IN ('reader', 'writer', 'admin', 'monitor')
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
		'synclog.revoke_doc(regrole,text)',
		'synclog.rotate_channel_key()',
		'synclog.forget_client(text,text)',
		'synclog.pause(text)',
		'synclog.resume()']) f
	 WHERE kind = 'admin';
END;

/*
 * Roles granted a kind before this point (those with EXECUTE on
 * synclog.read: readers, writers, admins) get the new reads.
 */
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN SELECT DISTINCT (a).grantee::regrole AS role, f.fn
			   FROM (SELECT aclexplode(proacl) a FROM pg_catalog.pg_proc
					  WHERE oid = 'synclog.read(text,text,bigint,integer,integer)'::regprocedure) x,
					unnest(ARRAY['synclog.bucket(smallint,bytea)',
								 'synclog.range_hashes(text,text,bigint)',
								 'synclog.range(text,text,integer[],smallint,bytea,integer,bigint)',
								 'synclog.sync_cost(text,text,bigint,bytea)',
								 'synclog.catch_up_target(text)',
								 'synclog.catch_up(text,text,bigint,bytea,text,bigint,smallint,bytea,integer)']) f(fn)
			  WHERE (a).grantee <> 0 AND (a).privilege_type = 'EXECUTE'
				AND (a).grantee <> (SELECT nspowner FROM pg_catalog.pg_namespace
									 WHERE nspname = 'synclog')
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', g.fn::regprocedure, g.role);
	END LOOP;
END $$;

-- Snapshot pages stream (issue 16) --------------------------------------------

/*
 * synclog.snapshot becomes a SQL function over synclog.snapshot_rows, a C
 * function that returns a page a row per call.  PostgreSQL inlines a
 * STABLE SQL function of one SELECT into the query that calls it, so
 * `SELECT key, value FROM synclog.snapshot(...)` runs the C function in a
 * select list, where it streams: each row is sent as soon as it is found,
 * as a plain paged SELECT's are, where a C function called in FROM has its
 * whole page materialized before the first row goes out (BENCHMARKS.md,
 * area 7b).  The interface, the meaning and the privileges of
 * synclog.snapshot stay what they were (CREATE OR REPLACE keeps its
 * grants).  Inlining needs the caller to be allowed to execute
 * snapshot_rows, so that one is executable by PUBLIC and itself requires
 * EXECUTE on synclog.snapshot (42501 otherwise); it must stay without a
 * SET clause, STRICT or SECURITY DEFINER on synclog.snapshot, any of
 * which would stop the inlining (it would still work, materialized).
 */
CREATE FUNCTION synclog.snapshot_rows(doc text, log_id text, after_key bytea,
	max_rows integer, OUT key bytea, OUT value bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'synclog_snapshot_rows'
LANGUAGE C STABLE;
GRANT EXECUTE ON FUNCTION synclog.snapshot_rows(text, text, bytea, integer) TO PUBLIC;

CREATE OR REPLACE FUNCTION synclog.snapshot(doc text, log_id text,
	after_key bytea DEFAULT NULL, max_rows integer DEFAULT 10000,
	OUT key bytea, OUT value bytea)
RETURNS SETOF record
LANGUAGE sql STABLE
AS $$ SELECT (r).key, (r).value
        FROM (SELECT synclog.snapshot_rows(doc, log_id, after_key, max_rows) AS r) s $$;
