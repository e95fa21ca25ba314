-- Garbage collection of sealed logs.

SELECT synclog.create_doc('gc') AS log1 \gset
SELECT synclog.append('gc', ARRAY['\x01', '\x02']::bytea[], ARRAY['\x01', '\x02']::bytea[], 'c', 1);
SELECT synclog.compact('gc') AS log2 \gset
SELECT synclog.append('gc', ARRAY['\x01', '\x03']::bytea[], ARRAY['\x11', '\x03']::bytea[]);
SELECT synclog.compact('gc') AS log3 \gset

-- Within retention nothing goes.
SELECT synclog.gc();
SET synclog.retention = 0;
-- log1 is two generations back: collected.  log2 is the previous log: kept.
SELECT synclog.gc();
SELECT synclog.gc();
SELECT log_id = :'log1' AS l1, log_id = :'log2' AS l2, state FROM synclog.log
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc') ORDER BY generation;

-- A client in the collected log is told to download the snapshot.
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('gc', :'log1', 0);
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.snapshot('gc', :'log1');
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT * FROM synclog.snapshot_info('gc', :'log1');
\set VERBOSITY default
-- The previous log is still readable to its end marker.
SELECT lsn, kind, next_log_id = :'log3' AS next_ok FROM synclog.read('gc', :'log2', 1);

-- Collection keeps every retained snapshot intact.
SELECT * FROM synclog.snapshot('gc', :'log2');
SELECT * FROM synclog.snapshot('gc', :'log3');
SELECT l.log_id = :'log2' AS l2, l.snapshot_hash = synclog.recompute_hash('gc', l.log_id) AS ok
  FROM synclog.log l WHERE l.log_id IN (:'log2', :'log3') ORDER BY generation;

-- Deletes in a collected log: the tombstone and what it hid both go.
SELECT synclog.append('gc', ARRAY['\x02']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.compact('gc') AS log4 \gset
SELECT synclog.append('gc', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]);
SELECT synclog.compact('gc') AS log5 \gset
SELECT synclog.gc();
-- Versions hold copies of their values (kind v): every entry of a collected
-- log goes, and only the previous log's entry (LSN 4) is left.
SELECT ns, key, lsn, kind, value FROM synclog.kv
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc') ORDER BY ns, key, lsn;
SELECT lsn FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc') ORDER BY lsn;
SELECT l.generation, l.state, l.snapshot_hash = synclog.recompute_hash('gc', l.log_id) AS ok
  FROM synclog.log l WHERE l.doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc')
   AND l.state <> 'collected' ORDER BY generation;
-- Collected rows are bounded: only the newest collected log of the document
-- keeps its row (no client acked in the older ones).  A client holding its
-- id is told SL003; one holding an older id, whose row is gone, SL002.
-- Both mean: download.
SELECT generation, state FROM synclog.log
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc') ORDER BY generation;
\set VERBOSITY sqlstate
SELECT * FROM synclog.read('gc', :'log3', 2);
SELECT * FROM synclog.read('gc', :'log1', 0);
SELECT * FROM synclog.snapshot('gc', :'log2');
\set VERBOSITY default

-- The client's watermark outlives the entries that set it.
SELECT count(*) AS entries_left FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc') AND client_id = 'c';
SELECT synclog.append('gc', ARRAY['\x09']::bytea[], ARRAY['\x09']::bytea[], 'c', 1);

-- More rotations and collections: again only the entries of the logs that
-- are not collected stay.
SELECT synclog.append('gc', ARRAY['\x01', '\x03']::bytea[], ARRAY['\x21', '\x23']::bytea[]);
SELECT synclog.compact('gc') IS NOT NULL;
SELECT synclog.append('gc', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[]);
SELECT synclog.compact('gc') IS NOT NULL;
SELECT synclog.append('gc', ARRAY['\x06']::bytea[], ARRAY['\x06']::bytea[]);
SELECT synclog.compact('gc') IS NOT NULL;
SELECT synclog.gc();
SELECT lsn FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc') ORDER BY lsn;
SELECT key, value FROM synclog.snapshot('gc', (SELECT log_id FROM synclog.current_log('gc')));
SELECT l.generation, l.state, l.snapshot_hash = synclog.recompute_hash('gc', l.log_id) AS ok
  FROM synclog.log l WHERE l.doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc')
   AND l.state <> 'collected' ORDER BY generation;
-- The client's retry is still recognised, though its entry is gone.
SELECT synclog.append('gc', ARRAY['\x09']::bytea[], ARRAY['\x09']::bytea[], 'c', 1);

-- A log that changes more keys than one DELETE carries (256) and has more
-- entries than one fetch (64).  Log 1 sets keys 1..300; log 2 sets them
-- all again and then deletes keys 1..50; logs 1 and 2 are collected.  Left:
-- one version per key for keys 51..300, no tombstone, and key 999 of log 3.
SELECT synclog.create_doc('gc-many') IS NOT NULL;
SELECT count(*) FROM (SELECT synclog.append('gc-many', ARRAY[int4send(i)], ARRAY[int4send(i)])
                        FROM generate_series(1, 300) i) a;
SELECT synclog.compact('gc-many') IS NOT NULL;
SELECT count(*) FROM (SELECT synclog.append('gc-many', ARRAY[int4send(2 * j - 1), int4send(2 * j)],
                                            ARRAY[int4send(-j), int4send(-j)])
                        FROM generate_series(1, 150) j) a;
SELECT synclog.append('gc-many', array_agg(int4send(i)), array_fill(NULL::bytea, ARRAY[50]))
  FROM generate_series(1, 50) i;
SELECT synclog.compact('gc-many') IS NOT NULL;
SELECT synclog.append('gc-many', ARRAY[int4send(999)], ARRAY['\x99'::bytea]);
SELECT synclog.compact('gc-many') IS NOT NULL;
SELECT synclog.gc();
SELECT count(*) AS versions, count(DISTINCT key) AS keys, count(*) FILTER (WHERE kind = 'd') AS tombstones,
       min(lsn) AS min_lsn, max(lsn) AS max_lsn
  FROM synclog.kv WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc-many') AND ns = 1;
SELECT array_agg(lsn) AS entries_left FROM synclog.entry
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc-many');
SELECT count(*) AS keys, (array_agg(key ORDER BY key))[1] AS first_key,
       (array_agg(value ORDER BY key))[1] AS first_value
  FROM synclog.snapshot('gc-many', (SELECT log_id FROM synclog.current_log('gc-many')));
SELECT l.generation, l.state, l.snapshot_hash = synclog.recompute_hash('gc-many', l.log_id) AS ok
  FROM synclog.log l WHERE l.doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc-many')
   AND l.state <> 'collected' ORDER BY generation;
SELECT synclog.drop_doc('gc-many');

-- A call collects at most synclog.gc_max_logs logs; the next call goes on.
SELECT synclog.create_doc('gc-batch') IS NOT NULL AS created;
SELECT count(synclog.compact('gc-batch'))
  FROM generate_series(1, 6) i,
       LATERAL (SELECT synclog.append('gc-batch', ARRAY[int4send(i)], ARRAY['\x01'::bytea])) a;
SELECT count(*) FILTER (WHERE state = 'retired') AS retired
  FROM synclog.log WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'gc-batch');
SET synclog.gc_max_logs = 2;
SELECT synclog.gc() AS first_call;
SELECT synclog.gc() AS second_call;
SET synclog.gc_max_logs = 0;
SELECT synclog.gc() AS the_rest;
SELECT synclog.gc() AS nothing_left;
RESET synclog.gc_max_logs;
SET synclog.gc_max_logs = -1;
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.drop_doc('gc-batch');

RESET synclog.retention;
SELECT synclog.drop_doc('gc');
