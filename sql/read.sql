-- Reading a log: pages, the end-log marker, and the errors a client acts on.

SELECT synclog.create_doc('rd') AS log1 \gset
SELECT synclog.append('rd', ARRAY[int4send(i)], ARRAY[decode(repeat('ab', 100), 'hex')])
  FROM generate_series(1, 10) i;

SELECT lsn, kind, length(delta) AS delta_bytes, client_id, next_log_id, snapshot_hash
  FROM synclog.read('rd', :'log1', 0);
-- Pages by count and by bytes; the first entry always goes out.
SELECT lsn FROM synclog.read('rd', :'log1', 0, 3);
SELECT lsn FROM synclog.read('rd', :'log1', 3, max_bytes => 450);
SELECT lsn FROM synclog.read('rd', :'log1', 3, max_bytes => 1);
-- At the head of the active log: nothing yet, no marker.
SELECT count(*) FROM synclog.read('rd', :'log1', 10);

-- Rotate; the old log ends with the marker.
SELECT synclog.append('rd', ARRAY['\x00000001'::bytea], ARRAY['\x01'::bytea], 'w', 1);
SELECT synclog.compact('rd') AS log2 \gset
SELECT lsn, kind, next_log_id = :'log2' AS next_ok,
	   snapshot_hash = (SELECT snapshot_hash FROM synclog.current_log('rd')) AS hash_ok,
	   client_id, client_seq
  FROM synclog.read('rd', :'log1', 8);
-- A reader already at the end gets just the marker.
SELECT lsn, kind FROM synclog.read('rd', :'log1', 11);
-- A page that stops short of the end carries no marker.
SELECT lsn, kind FROM synclog.read('rd', :'log1', 8, 2);

-- The new log starts at the snapshot LSN and continues the LSNs.
SELECT synclog.append('rd', ARRAY['\x00000002'::bytea], ARRAY['\x02'::bytea]);
SELECT lsn, kind FROM synclog.read('rd', :'log2', 11);
SELECT lsn, kind FROM synclog.read('rd', :'log1', 0, 1);

-- Errors a client acts on.
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'log2', 13);
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'log1', 12);
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'log2', 5);
\set VERBOSITY default
SELECT * FROM synclog.read('rd', '00000000000000000000000000000000', 0);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('nope', :'log1', 0);
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'log1', -1);
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'log1', NULL);
\set VERBOSITY default
SELECT * FROM synclog.read('rd', NULL, 0);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'log1', 0, 0);
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'log1', 0, 10, -5);
\set VERBOSITY default
-- A log id from another document is unknown here.
SELECT synclog.create_doc('rd-other') AS other_log \gset
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('rd', :'other_log', 0);
\set VERBOSITY default

SELECT synclog.drop_doc('rd');
SELECT synclog.drop_doc('rd-other');
