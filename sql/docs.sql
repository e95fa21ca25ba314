-- Creating, finding and dropping documents.

SELECT synclog.create_doc('doc-a') AS first_log \gset
SELECT :'first_log' ~ '^[0-9a-f]{32}$' AS log_id_is_128_random_bits;
SELECT log_id = :'first_log' AS same_log, base_lsn, head_lsn,
	   snapshot_hash = synclog.empty_hash() AS empty_snapshot
  FROM synclog.current_log('doc-a');

-- Two documents never share a log id.
SELECT synclog.create_doc('doc-b') <> :'first_log' AS distinct_ids;

-- A document id is 1 to 200 bytes of any text.
SELECT synclog.create_doc(repeat('x', 200)) IS NOT NULL AS max_len_ok;
SELECT synclog.create_doc('späce "quoted" \ and ''single''') IS NOT NULL AS any_text_ok;
SELECT synclog.create_doc(repeat('x', 201));
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.create_doc('');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.create_doc(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.create_doc('doc-a');
\echo :LAST_ERROR_SQLSTATE

SELECT doc, active_entries, active_bytes, previous_log FROM synclog.status ORDER BY doc COLLATE "C";

-- Unknown documents.
SELECT * FROM synclog.current_log('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.drop_doc('nope');
\echo :LAST_ERROR_SQLSTATE

-- Dropping removes every trace; the id can be created again with a new log.
SELECT synclog.append('doc-b', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SELECT synclog.compact('doc-b') IS NOT NULL AS rotated;
SELECT synclog.drop_doc('doc-b');
SELECT count(*) FROM synclog.current_log('doc-b');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.create_doc('doc-b') <> :'first_log' AS recreated;
SELECT head_lsn FROM synclog.current_log('doc-b');

SELECT synclog.drop_doc(d) FROM (VALUES ('doc-a'), ('doc-b'), (repeat('x', 200)),
	('späce "quoted" \ and ''single''')) t(d);
SELECT count(*) AS docs FROM synclog.status;
