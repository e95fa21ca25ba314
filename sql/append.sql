-- Appending: LSNs, deletes, binary deltas and idempotent client retries.

SELECT synclog.create_doc('ap') IS NOT NULL AS created;

SELECT synclog.append('ap', ARRAY['\x01', '\x02']::bytea[], ARRAY['\x0a', '\x0b']::bytea[]);
SELECT synclog.append('ap', ARRAY['\x01']::bytea[], ARRAY[NULL]::bytea[]);
-- An entry with no changes is still an entry.
SELECT synclog.append('ap', '{}'::bytea[], '{}'::bytea[]);
SELECT synclog.append_delta('ap', synclog.encode_delta(ARRAY['\x03']::bytea[], ARRAY['\x0c']::bytea[]));
SELECT synclog.append_delta('ap', '\x0101000000010000000401000000ff');
SELECT head_lsn FROM synclog.current_log('ap');
SELECT active_entries, active_bytes FROM synclog.status WHERE doc = 'ap';

-- Idempotence: per client, a client_seq not above the highest applied
-- returns the LSN recorded for that client and appends nothing.
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x01']::bytea[], 'c1', 1);
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x01']::bytea[], 'c1', 1);
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x02']::bytea[], 'c2', 1);
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x03']::bytea[], 'c1', 5);
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x03']::bytea[], 'c1', 4);
SELECT synclog.append_delta('ap', synclog.encode_delta(ARRAY['\x10']::bytea[], ARRAY['\x03']::bytea[]), 'c1', 5);
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x04']::bytea[], 'c1', 6);
SELECT head_lsn FROM synclog.current_log('ap');

-- The watermark survives a rotation (it moves into the snapshot).
SELECT synclog.compact('ap') IS NOT NULL AS rotated;
SELECT * FROM synclog.snapshot_clients('ap', (SELECT log_id FROM synclog.current_log('ap')));
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x04']::bytea[], 'c1', 6);
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x04']::bytea[], 'c2', 1);
SELECT synclog.append('ap', ARRAY['\x10']::bytea[], ARRAY['\x05']::bytea[], 'c2', 2);

-- Bad input: nothing is written.
SELECT synclog.append('nope', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append_delta('nope', '\x0100000000');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append(NULL, ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', NULL, ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY['\x01', '\x02']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY[NULL]::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY['\x01', '\x01']::bytea[], ARRAY['\x01', '\x02']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], 'c1', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], NULL, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], '', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], repeat('c', 201), 1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('ap', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], 'c1', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append_delta('ap', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append_delta('ap', '\x01010000');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append_delta('ap', '\x0101000000020000006b3102000000763199');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append_delta('ap', '\x09');
\echo :LAST_ERROR_SQLSTATE
SELECT head_lsn FROM synclog.current_log('ap');

-- A failed append inside a transaction leaves no gap: the LSN is not consumed.
BEGIN;
SELECT synclog.append('ap', ARRAY['\x20']::bytea[], ARRAY['\x01']::bytea[]);
ROLLBACK;
SELECT synclog.append('ap', ARRAY['\x20']::bytea[], ARRAY['\x01']::bytea[]);

SELECT synclog.drop_doc('ap');

-- The append path inserts the entry's index entries itself while the entry
-- table has just its own two indexes; with any other index it lets the
-- executor maintain them all, so an index a DBA adds stays complete.
SELECT synclog.create_doc('ap2') IS NOT NULL AS created;
SELECT synclog.append('ap2', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
CREATE INDEX entry_dba_idx ON synclog.entry (log_bytes);
SELECT synclog.append('ap2', ARRAY['\x02']::bytea[], ARRAY['\x0203']::bytea[], 'c1', 1);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT lsn, log_bytes FROM synclog.entry WHERE log_bytes = 31;
SELECT lsn, log_bytes FROM synclog.entry WHERE log_bytes = 31;
SELECT lsn, client_seq FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
 WHERE d.name = 'ap2' AND client_id = 'c1';
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX synclog.entry_dba_idx;
SELECT synclog.append('ap2', ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[], 'c1', 2);
SELECT lsn, log_bytes, client_seq FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
 WHERE d.name = 'ap2' ORDER BY lsn;

-- What the append path remembers per session (relations, document ids)
-- follows the extension being dropped and created again, and a document
-- dropped and created again under the same id.
SELECT synclog.drop_doc('ap2');
SELECT synclog.create_doc('ap2') IS NOT NULL AS created;
SELECT synclog.append('ap2', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
-- (Dropping the extension with documents in it takes CASCADE.)
\set VERBOSITY terse
DROP EXTENSION synclog;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DROP EXTENSION synclog CASCADE;
CREATE EXTENSION synclog;
SELECT synclog.create_doc('ap2') IS NOT NULL AS created;
SELECT synclog.append('ap2', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.append('ap2', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);
SELECT synclog.drop_doc('ap2');

-- The append path also remembers where each document's row was, and looks
-- there before it searches the name index.  A stale place must never
-- resolve to another document: here the row of 'tid_a' is removed, VACUUM
-- frees its slot, and a new document takes it (same_slot).  Appends to
-- 'tid_a' then fail, and the new document gets its own LSNs.  (The first
-- VACUUM clears what earlier tests left, so that the freed slot is the
-- first free one.)
VACUUM synclog.doc;
SELECT synclog.create_doc('tid_a') IS NOT NULL AS created;
SELECT ctid AS tid_a_slot FROM synclog.doc WHERE name = 'tid_a' \gset
SELECT synclog.append('tid_a', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.drop_doc('tid_a');
VACUUM synclog.doc;
SELECT synclog.create_doc('tid_b') IS NOT NULL AS created;
SELECT ctid = :'tid_a_slot'::tid AS same_slot FROM synclog.doc WHERE name = 'tid_b';
SELECT synclog.append('tid_a', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('tid_b', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.create_doc('tid_a') IS NOT NULL AS created;
SELECT synclog.append('tid_a', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
-- Rows moved (VACUUM FULL), updated (a rotation, a policy change): the
-- remembered places are stale and the appends still find their documents.
VACUUM FULL synclog.doc;
SELECT synclog.append('tid_a', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);
SELECT synclog.compact('tid_b') IS NOT NULL AS rotated;
SELECT synclog.set_policy('tid_a', rotate_entries => 1000);
SELECT synclog.append('tid_b', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);
SELECT synclog.append('tid_a', ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[]);
SELECT synclog.drop_doc('tid_a'), synclog.drop_doc('tid_b');

-- Document ids compare byte by byte, whatever the database's locale.
SELECT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
 WHERE a.attrelid = 'synclog.doc'::regclass AND a.attname = 'name';

-- One transaction may append to any number of documents: the lock that
-- orders a document's appends is a row lock, not an entry in the shared
-- lock table (which would run out after a few thousand).  The per-session
-- table of head hints starts afresh past 4,096 documents, in the middle of
-- the statement here; every append still finds its document and its LSN.
SELECT count(synclog.create_doc('many_' || i)) FROM generate_series(1, 4200) i;
BEGIN;
SELECT count(*) FILTER (WHERE lsn = j) AS right_lsn, count(*) AS appends FROM (
	SELECT j, synclog.append('many_' || i, ARRAY[int4send(j)], ARRAY['\x00'::bytea]) AS lsn
	  FROM generate_series(1, 4200) i, generate_series(1, 2) j ORDER BY i, j) a;
SELECT count(*) < 100 AS few_locks FROM pg_locks WHERE pid = pg_backend_pid();
COMMIT;
SELECT count(*) FROM synclog.status WHERE doc LIKE 'many\_%' AND head_lsn = 2;
SELECT count(synclog.drop_doc('many_' || i)) FROM generate_series(1, 4200) i;
