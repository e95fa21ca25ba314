-- A client's view of synclog, in plain SQL.  The "client" keeps its local
-- copy of the document in a temporary table and follows the protocol of
-- PROTOCOL.md: read, apply, and at an end-log marker compare its own hash
-- with the marker's and switch logs without downloading anything.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS synclog;
\o /dev/null
SELECT synclog.drop_doc(name) FROM synclog.doc WHERE name = 'walkthrough';
\o

\echo '== 1. The coordinator creates a document; its first log starts at LSN 0.'
SELECT synclog.create_doc('walkthrough') AS log1 \gset
SELECT * FROM synclog.current_log('walkthrough');

\echo '== 2. Writers append deltas (key -> value, NULL deletes). Each gets the next LSN.'
SELECT synclog.append('walkthrough', ARRAY['page-1', 'page-2']::bytea[], ARRAY['hello', 'world']::bytea[]) AS lsn;
SELECT synclog.append('walkthrough', ARRAY['page-2']::bytea[], ARRAY['there']::bytea[], 'phone', 1) AS lsn;
SELECT synclog.append('walkthrough', ARRAY['page-3']::bytea[], ARRAY['!']::bytea[]) AS lsn;

\echo '== 3. A client pulls the log and applies it to its local state.'
CREATE TEMP TABLE local_state (key bytea PRIMARY KEY, value bytea);
CREATE TEMP TABLE local_clients (client_id text PRIMARY KEY, client_seq bigint, client_lsn bigint);
SELECT lsn, kind, convert_from(c.key, 'UTF8') AS key, convert_from(c.value, 'UTF8') AS value, r.client_id
  FROM synclog.read('walkthrough', :'log1', 0) r, synclog.decode_delta(r.delta) c;
INSERT INTO local_state
SELECT DISTINCT ON (c.key) c.key, c.value
  FROM synclog.read('walkthrough', :'log1', 0) r, synclog.decode_delta(r.delta) c
 ORDER BY c.key, r.lsn DESC
ON CONFLICT (key) DO UPDATE SET value = excluded.value;
INSERT INTO local_clients
SELECT DISTINCT ON (client_id) client_id, client_seq, lsn
  FROM synclog.read('walkthrough', :'log1', 0) WHERE client_id IS NOT NULL
 ORDER BY client_id, lsn DESC;

\echo '== 4. The coordinator compacts: snapshot the state, start a new log, seal the old one.'
SELECT synclog.compact('walkthrough') AS log2 \gset
SELECT doc, generation, base_lsn, head_lsn, active_entries, previous_log IS NOT NULL AS has_previous
  FROM synclog.status WHERE doc = 'walkthrough';
SELECT synclog.append('walkthrough', ARRAY['page-4']::bytea[], ARRAY['more']::bytea[]) AS lsn;

\echo '== 5. The client reads on in its old log and reaches the end-log marker.'
SELECT lsn, kind, next_log_id, encode(snapshot_hash, 'hex') AS marker_hash
  FROM synclog.read('walkthrough', :'log1', 3);
SELECT next_log_id AS next_log, snapshot_hash AS marker_hash
  FROM synclog.read('walkthrough', :'log1', 3) WHERE kind = 'end' \gset

\echo '== 6. It hashes its own state at the marker LSN and compares: a match means switch, no download.'
SELECT encode(synclog.hash_combine(
		(SELECT synclog.state_hash(key, value) FROM local_state),
		(SELECT synclog.state_hash(client_id, client_seq, client_lsn) FROM local_clients)), 'hex') AS local_hash,
	   synclog.hash_combine(
		(SELECT synclog.state_hash(key, value) FROM local_state),
		(SELECT synclog.state_hash(client_id, client_seq, client_lsn) FROM local_clients)) = :'marker_hash'::bytea AS hashes_match;

\echo '== 7. Switched: the client continues in the new log from the snapshot LSN.'
SELECT lsn, kind, convert_from(c.key, 'UTF8') AS key, convert_from(c.value, 'UTF8') AS value
  FROM synclog.read('walkthrough', :'next_log', 3) r, synclog.decode_delta(r.delta) c;

\echo '== 8. A client that cannot switch (mismatch, or its log was collected) downloads the snapshot instead:'
SELECT convert_from(key, 'UTF8') AS key, convert_from(value, 'UTF8') AS value
  FROM synclog.snapshot('walkthrough', :'next_log');
SELECT base_lsn, key_count, client_count, clients FROM synclog.snapshot_info('walkthrough', :'next_log');

\echo '== 9. A client that was away for two more rotations asks what each way back costs, then catches up:'
\echo '      only the keys that changed since its position come back, with their newest values.'
SELECT count(synclog.append('walkthrough', ARRAY['page-1']::bytea[], ARRAY['rewritten ' || i]::bytea[])) AS appended
  FROM generate_series(1, 3) i;
SELECT synclog.compact('walkthrough') IS NOT NULL AS rotated;
SELECT synclog.append('walkthrough', ARRAY['page-1', 'page-5']::bytea[], ARRAY['final', 'new']::bytea[]) AS lsn;
SELECT synclog.compact('walkthrough') IS NOT NULL AS rotated;
SELECT replay_bytes, catch_up_bytes, snapshot_bytes
  FROM synclog.sync_cost('walkthrough', :'next_log', 4, synclog.chain_at('walkthrough', :'next_log', 4));
SELECT log_id AS target_log, lsn AS target_lsn FROM synclog.catch_up_target('walkthrough') \gset
SELECT ns, convert_from(key, 'UTF8') AS key, convert_from(value, 'UTF8') AS value
  FROM synclog.catch_up('walkthrough', :'next_log', 4, synclog.chain_at('walkthrough', :'next_log', 4),
                        :'target_log', :target_lsn);
