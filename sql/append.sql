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
