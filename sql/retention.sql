-- Clients acknowledge their position; retention follows active clients,
-- up to a hard maximum; the counters tell a DBA how switches went.

SELECT synclog.create_doc('ret') AS log1 \gset
SELECT synclog.append('ret', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.ack('ret', 'phone', :'log1', 1);
SELECT synclog.ack('ret', 'laptop', :'log1', 0);
SELECT synclog.compact('ret') AS log2 \gset
SELECT synclog.append('ret', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);
-- phone crosses the marker; tablet starts from the snapshot of log2.
SELECT synclog.ack('ret', 'phone', :'log2', 2);
SELECT synclog.ack('ret', 'tablet', :'log2', 1);
-- Acks within a log count nothing.
SELECT synclog.ack('ret', 'phone', :'log2', 2);
SELECT synclog.compact('ret') AS log3 \gset
SELECT synclog.append('ret', ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[]);
SELECT synclog.compact('ret') AS log4 \gset

SELECT doc, rotations, logs_collected, marker_switches, downloads, cut_off, clients
  FROM synclog.stats WHERE doc = 'ret';

-- log1 and log2 are retired.  laptop is active in log1: both stay.
SET synclog.retention = 0;
SELECT synclog.gc();
-- Once laptop has been quiet longer than the activity window, log1 goes
-- (and laptop counts as cut off); log2 holds phone and tablet.
SET synclog.client_activity_window = '1h';
UPDATE synclog.client_pos SET acked_at = now() - interval '2 hours' WHERE client_id = 'laptop';
SELECT synclog.gc();
SELECT doc, logs_collected, cut_off FROM synclog.stats WHERE doc = 'ret';
-- The hard maximum overrides active clients.
SET synclog.retention_max = '1h';
UPDATE synclog.log SET sealed_at = now() - interval '2 hours'
 WHERE log_id = :'log2';
SELECT synclog.gc();
SELECT generation, state FROM synclog.log WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'ret')
 ORDER BY generation;
SELECT doc, rotations, logs_collected, marker_switches, downloads, cut_off, clients
  FROM synclog.stats WHERE doc = 'ret';
-- laptop comes back: its log is gone, so it downloads and acks the current log.
\set VERBOSITY sqlstate
SELECT synclog.ack('ret', 'laptop', :'log1', 1);
\set VERBOSITY default
SELECT synclog.ack('ret', 'laptop', :'log4', 3);
SELECT doc, marker_switches, downloads FROM synclog.stats WHERE doc = 'ret';
SELECT * FROM synclog.stats_total WHERE docs > 0;

-- Collected rows: log1 kept its row while laptop's last ack named it (so
-- laptop got SL003 above).  Now that laptop acked log4, the next collection
-- deletes log1's row; log2's stays, as phone and tablet last acked there,
-- and so does the newest collected row (log3).
SELECT synclog.append('ret', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]);
SELECT synclog.compact('ret') IS NOT NULL;
SELECT synclog.append('ret', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[]);
SELECT synclog.compact('ret') IS NOT NULL;
SELECT synclog.gc();
SELECT generation, state FROM synclog.log WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'ret')
 ORDER BY generation;
-- A client still holding log1 is told the log is unknown (SL002), one
-- holding log2 or log3 that it was collected (SL003): both download.
\set VERBOSITY sqlstate
SELECT synclog.ack('ret', 'laptop', :'log1', 1);
SELECT * FROM synclog.read('ret', :'log2', 1);
SELECT * FROM synclog.read('ret', :'log3', 2);
\set VERBOSITY default
-- A client coming from a collected log counts as a download.
SELECT synclog.ack('ret', 'phone', (SELECT log_id FROM synclog.current_log('ret')), 5);
SELECT doc, logs_collected, marker_switches, downloads FROM synclog.stats WHERE doc = 'ret';

-- Bad input.
SELECT synclog.ack('nope', 'c', :'log4', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.ack('ret', NULL, :'log4', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.ack('ret', '', :'log4', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.ack('ret', 'c', NULL, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.ack('ret', 'c', 'not-a-log', 0);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY sqlstate
SELECT synclog.ack('ret', 'c', :'log4', -1);
SELECT synclog.ack('ret', 'c', :'log4', 99);
SELECT synclog.ack('ret', 'c', :'log4', 1);
\set VERBOSITY default

RESET synclog.retention;
RESET synclog.retention_max;
RESET synclog.client_activity_window;
SELECT synclog.drop_doc('ret');
SELECT count(*) FROM synclog.client_pos;
SELECT count(*) FROM synclog.doc_stats;
