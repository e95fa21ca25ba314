-- Snapshot-and-rotate.

SELECT synclog.create_doc('cp') AS log1 \gset
-- Nothing to rotate.
SELECT synclog.compact('cp') IS NULL AS nothing_to_do;

SELECT synclog.append('cp', ARRAY['\x01', '\x02', '\x03']::bytea[], ARRAY['\x0a', '\x0b', '\x0c']::bytea[]);
SELECT synclog.append('cp', ARRAY['\x02', '\x04']::bytea[], ARRAY[NULL, '\x0d']::bytea[], 'cl', 1);
SELECT synclog.append('cp', ARRAY['\x01']::bytea[], ARRAY['\x1a']::bytea[]);

SELECT synclog.compact('cp') AS log2 \gset
SELECT :'log2' ~ '^[0-9a-f]{32}$' AS new_id, :'log2' <> :'log1' AS differs;
SELECT log_id = :'log2' AS is_current, base_lsn, head_lsn FROM synclog.current_log('cp');
SELECT * FROM synclog.snapshot('cp', :'log2');
SELECT * FROM synclog.snapshot_clients('cp', :'log2');

-- The incremental hash equals a recomputation from the snapshot rows, and a
-- recomputation from scratch: fold every entry ever appended.
SELECT snapshot_hash = synclog.recompute_hash('cp', :'log2') AS matches_snapshot
  FROM synclog.current_log('cp');
CREATE FUNCTION fold_from_scratch(d text, upto bigint) RETURNS bytea LANGUAGE sql AS $$
	WITH e AS (SELECT e.* FROM synclog.entry e JOIN synclog.doc x USING (doc_id)
				WHERE x.name = d AND e.lsn <= upto)
	SELECT synclog.hash_combine(
		(SELECT synclog.state_hash(key, value) FROM (
			SELECT DISTINCT ON (c.key) c.key, c.value
			  FROM e, synclog.decode_delta(e.delta) c
			 ORDER BY c.key, e.lsn DESC) s),
		(SELECT synclog.state_hash(client_id, client_seq, lsn) FROM (
			SELECT DISTINCT ON (client_id) client_id, client_seq, lsn
			  FROM e WHERE client_id IS NOT NULL
			 ORDER BY client_id, lsn DESC) w))
$$;
SELECT snapshot_hash = fold_from_scratch('cp', 3) AS matches_scratch FROM synclog.current_log('cp');

-- The marker carries the same hash and the new log's id.
SELECT kind, lsn, next_log_id = :'log2' AS next_ok,
	   snapshot_hash = synclog.recompute_hash('cp', :'log2') AS hash_ok
  FROM synclog.read('cp', :'log1', 3);
SELECT * FROM synclog.hash_info(synclog.recompute_hash('cp', :'log2'));

-- The old log's own snapshot (the empty state at 0) is still served.
SELECT count(*) FROM synclog.snapshot('cp', :'log1');

-- A rotation only touches what its log changed: later rotations keep older keys.
SELECT synclog.append('cp', ARRAY['\x03']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.append('cp', ARRAY['\x05']::bytea[], ARRAY['\x0e']::bytea[]);
-- Delete then re-create in the same log, and create then delete.
SELECT synclog.append('cp', ARRAY['\x01']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.append('cp', ARRAY['\x01', '\x06']::bytea[], ARRAY['\x2a', '\x0f']::bytea[]);
SELECT synclog.append('cp', ARRAY['\x06']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.compact('cp') AS log3 \gset
SELECT * FROM synclog.snapshot('cp', :'log3');
SELECT snapshot_hash = synclog.recompute_hash('cp', :'log3') AS matches_snapshot,
	   snapshot_hash = fold_from_scratch('cp', 8) AS matches_scratch
  FROM synclog.current_log('cp');
-- Older snapshots are unchanged by the later rotation.
SELECT * FROM synclog.snapshot('cp', :'log2');
SELECT (SELECT snapshot_hash FROM synclog.log WHERE log_id = :'log2') = synclog.recompute_hash('cp', :'log2') AS old_still_ok;

-- A log longer than one fetch (64 entries) that changes more keys than one
-- fold group (256) holds: 200 entries set keys 1..600, three keys each;
-- then a log deletes keys 1..300 (tombstones), deletes keys 1001..1300 that
-- never existed (no rows), sets keys 301..600 again with a client id, and
-- writes a value larger than a group's byte bound (8 MiB).
SELECT synclog.create_doc('cp-big') IS NOT NULL;
SELECT count(*) FROM (SELECT synclog.append('cp-big', ARRAY[int4send(3 * j - 2), int4send(3 * j - 1), int4send(3 * j)],
                                            ARRAY[int4send(j), int4send(j), int4send(j)])
                        FROM generate_series(1, 200) j) a;
SELECT synclog.compact('cp-big') IS NOT NULL;
SELECT synclog.append('cp-big', array_agg(int4send(i)), array_fill(NULL::bytea, ARRAY[300]))
  FROM generate_series(1, 300) i;
SELECT synclog.append('cp-big', array_agg(int4send(i)), array_fill(NULL::bytea, ARRAY[300]))
  FROM generate_series(1001, 1300) i;
SELECT count(*) FROM (SELECT synclog.append('cp-big', ARRAY[int4send(i)], ARRAY[int4send(-i)], 'big-client', i)
                        FROM generate_series(301, 600) i) a;
SELECT synclog.append('cp-big', ARRAY['\xffff']::bytea[], ARRAY[convert_to(repeat('z', 9 * 1024 * 1024), 'UTF8')]);
SELECT synclog.compact('cp-big') IS NOT NULL;
SELECT count(*) AS keys, sum(length(value)) AS bytes FROM synclog.snapshot('cp-big',
       (SELECT log_id FROM synclog.current_log('cp-big')));
SELECT * FROM synclog.snapshot_clients('cp-big', (SELECT log_id FROM synclog.current_log('cp-big')));
SELECT snapshot_hash = synclog.recompute_hash('cp-big', log_id) AS matches_snapshot,
       snapshot_hash = fold_from_scratch('cp-big', head_lsn) AS matches_scratch
  FROM synclog.current_log('cp-big');
SELECT kind, count(*) FROM synclog.kv
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'cp-big') AND lsn > 200
 GROUP BY kind ORDER BY kind;
SELECT synclog.drop_doc('cp-big');

-- Rotating inside a transaction that rolls back changes nothing.
SELECT synclog.append('cp', ARRAY['\x07']::bytea[], ARRAY['\x10']::bytea[]);
BEGIN;
SELECT synclog.compact('cp') IS NOT NULL AS rotated_in_tx;
ROLLBACK;
SELECT log_id = :'log3' AS still_log3, head_lsn FROM synclog.current_log('cp');
SELECT count(*) AS kind_end FROM synclog.read('cp', :'log3', 8) WHERE kind = 'end';

SELECT doc, generation, base_lsn, head_lsn, active_entries, previous_log = :'log2' AS prev_ok,
	   retired_logs
  FROM synclog.status WHERE doc = 'cp';

-- Bad input.
SELECT synclog.compact('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.compact(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.compact('');
\echo :LAST_ERROR_SQLSTATE

DROP FUNCTION fold_from_scratch(text, bigint);
SELECT synclog.drop_doc('cp');
