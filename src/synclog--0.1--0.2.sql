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
  LEFT JOIN synclog.log p ON p.doc_id = d.doc_id AND p.state = 'previous'
 WHERE synclog.can_read(d.name);

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
	SELECT 'synclog.can_read(text)'::regprocedure
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
		'synclog.rotate_channel_key()']) f
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
		EXECUTE format('GRANT SELECT ON synclog.status, synclog.stats, synclog.stats_total, synclog.clients TO %s', role);
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
	EXECUTE format('REVOKE SELECT ON synclog.status, synclog.stats, synclog.stats_total, synclog.clients FROM %s', role);
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
 * snapshot page) two to three times as fast (BENCHMARKS.md, area 14).
 * Values written before keep pglz; both read back the same.
 */
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_settings
				WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE synclog.kv ALTER COLUMN value SET COMPRESSION lz4;
	END IF;
END $$;
