-- Access: the three kinds of users, per-document confinement, and that a
-- caller cannot reach the tables directly or hijack synclog's queries.

CREATE ROLE regress_sl_reader;
CREATE ROLE regress_sl_writer;
CREATE ROLE regress_sl_admin;
CREATE ROLE regress_sl_team_a;
CREATE ROLE regress_sl_team_a_ro;
CREATE ROLE regress_sl_nobody;
SELECT synclog.grant_role('regress_sl_reader', 'reader');
SELECT synclog.grant_role('regress_sl_writer', 'writer');
SELECT synclog.grant_role('regress_sl_admin', 'admin');
SELECT synclog.grant_role('regress_sl_team_a', 'writer');
SELECT synclog.grant_role('regress_sl_team_a_ro', 'reader');
GRANT CREATE ON SCHEMA public TO regress_sl_writer;

SELECT synclog.create_doc('team-a/notes') AS log_a \gset
SELECT synclog.create_doc('team-b/notes') AS log_b \gset

-- Nothing is granted to PUBLIC.
SET ROLE regress_sl_nobody;
SELECT synclog.create_doc('x');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.encode_delta('{}'::bytea[], '{}'::bytea[]);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- synclog.snapshot_rows is executable by PUBLIC (synclog.snapshot is inlined
-- into its callers' queries) and requires EXECUTE on synclog.snapshot.
GRANT USAGE ON SCHEMA synclog TO regress_sl_nobody;
SET ROLE regress_sl_nobody;
SELECT * FROM synclog.snapshot_rows('team-a/notes', 'any', NULL, 10);
SELECT * FROM synclog.snapshot('team-a/notes', 'any', NULL, 10);
RESET ROLE;
REVOKE USAGE ON SCHEMA synclog FROM regress_sl_nobody;

-- A reader reads, and cannot write or touch the tables.
SET ROLE regress_sl_reader;
SELECT head_lsn FROM synclog.current_log('team-a/notes');
SELECT count(*) FROM synclog.read('team-b/notes', :'log_b', 0);
SELECT synclog.append('team-a/notes', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.compact('team-a/notes');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM synclog.entry;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM synclog.status;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- A writer appends, and cannot compact, drop or reach the tables.
SET ROLE regress_sl_writer;
SELECT synclog.append('team-a/notes', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.append('team-b/notes', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.compact('team-a/notes');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.drop_doc('team-a/notes');
\echo :LAST_ERROR_SQLSTATE
UPDATE synclog.doc SET due = true;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO synclog.entry VALUES (1, 99, 5, '\x0100000000');
\echo :LAST_ERROR_SQLSTATE

-- Objects a caller creates cannot capture synclog's queries: operators,
-- functions and tables that shadow the ones synclog uses are ignored.
CREATE FUNCTION public.evil_plus(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS
	$$ BEGIN RAISE NOTICE 'hijacked +'; RETURN $1 + $2 + 1000; END $$;
CREATE OPERATOR public.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.evil_plus);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS
	$$ BEGIN RAISE NOTICE 'hijacked now()'; RETURN '2000-01-01'; END $$;
CREATE TEMP TABLE doc (name text, head_lsn bigint);
SET search_path = pg_temp, public, pg_catalog;
SELECT synclog.append('team-a/notes', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);
SELECT synclog.append('team-a/notes', ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[], 'w', 1);
RESET search_path;
DROP OPERATOR public.+ (bigint, integer);
DROP FUNCTION public.evil_plus(bigint, integer);
DROP FUNCTION public.now();
DROP TABLE pg_temp.doc;
RESET ROLE;

-- An admin compacts, collects and reads the status.
SET ROLE regress_sl_admin;
SELECT synclog.compact('team-a/notes') IS NOT NULL AS rotated;
SELECT synclog.gc() >= 0 AS gc_ran;
SELECT doc, head_lsn FROM synclog.status WHERE doc LIKE 'team-%' ORDER BY doc;
RESET ROLE;

-- Per-document confinement: team_a writes team-a/*, team_a_ro reads it.
SELECT synclog.grant_doc('regress_sl_team_a', 'team-a/%', 'write');
SELECT synclog.grant_doc('regress_sl_team_a_ro', 'team-a/%');
SET ROLE regress_sl_team_a;
SELECT synclog.append('team-a/notes', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]);
SELECT synclog.create_doc('team-a/new') IS NOT NULL AS created;
-- Outside its patterns every function says the same, whether the document
-- exists or not.
SELECT synclog.append('team-b/notes', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('team-b/no-such-doc', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.current_log('team-b/notes');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.current_log('team-b/no-such-doc');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.create_doc('team-b/new');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_sl_team_a_ro;
SELECT head_lsn FROM synclog.current_log('team-a/notes');
SELECT synclog.ack('team-a/notes', 'ro-client', (SELECT log_id FROM synclog.current_log('team-a/notes')), 4);
SELECT synclog.append('team-a/notes', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('team-b/notes', :'log_b', 0);
SELECT * FROM synclog.snapshot('team-b/notes', :'log_b');
SELECT * FROM synclog.snapshot_info('team-b/notes', :'log_b');
SELECT * FROM synclog.snapshot_clients('team-b/notes', :'log_b');
SELECT synclog.recompute_hash('team-b/notes', :'log_b');
SELECT synclog.ack('team-b/notes', 'ro-client', :'log_b', 0);
\set VERBOSITY default
RESET ROLE;
-- Lifting the confinement.
SELECT synclog.revoke_doc('regress_sl_team_a_ro', 'team-a/%');
SET ROLE regress_sl_team_a_ro;
SELECT head_lsn FROM synclog.current_log('team-b/notes');
RESET ROLE;

-- Bad input.
SELECT synclog.grant_role('regress_sl_reader', 'superuser');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_role(NULL, 'reader');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_role('regress_no_such_role', 'reader');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_doc('regress_sl_team_a', 'team-c/%', 'delete');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_doc('regress_sl_team_a', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.grant_doc(NULL, 'x');
\echo :LAST_ERROR_SQLSTATE

SELECT synclog.drop_doc(d) FROM (VALUES ('team-a/notes'), ('team-b/notes'), ('team-a/new')) t(d);
SELECT synclog.revoke_role(r::regrole) FROM (VALUES ('regress_sl_reader'), ('regress_sl_writer'),
	('regress_sl_admin'), ('regress_sl_team_a'), ('regress_sl_team_a_ro')) t(r);
SELECT count(*) FROM synclog.doc_grant;
REVOKE CREATE ON SCHEMA public FROM regress_sl_writer;
DROP ROLE regress_sl_reader, regress_sl_writer, regress_sl_admin, regress_sl_team_a,
	regress_sl_team_a_ro, regress_sl_nobody;
