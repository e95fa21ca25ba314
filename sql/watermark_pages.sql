-- A snapshot's client watermarks are read 1,000 at a time: snapshot_clients,
-- snapshot_info and recompute_hash (through snapshot_clients) page past the
-- first 1,000 and return each watermark exactly once, in client id order.

SELECT synclog.create_doc('wp') IS NOT NULL AS created;
-- 2,500 clients: two full pages and a partial one.  Client ids sort as
-- their numbers; each client's seq and LSN follow from its number.
SELECT count(synclog.append('wp', ARRAY[int4send(i % 7)], ARRAY[int4send(i)],
							'client-' || lpad(i::text, 5, '0'), i * 3))
  FROM generate_series(1, 2500) i;
SELECT synclog.compact('wp') AS wp_log1 \gset
-- In the next log, rewrite the watermarks of the clients on either side of
-- each page boundary, and of the first and last.
SELECT count(synclog.append('wp', ARRAY[int4send(100)], ARRAY[int4send(i)],
							'client-' || lpad(i::text, 5, '0'), i * 3 + 1))
  FROM unnest(ARRAY[1, 1000, 1001, 2000, 2001, 2500]) i;
SELECT synclog.compact('wp') AS wp_log2 \gset

-- Every watermark once, in order, with its values.
SELECT count(*) AS clients,
	   count(DISTINCT client_id) AS distinct_clients,
	   bool_and(client_id = 'client-' || lpad(n::text, 5, '0')) AS in_order,
	   bool_and(client_seq = n * 3 AND client_lsn = n) AS values_ok
  FROM (SELECT c.*, row_number() OVER () AS n
		  FROM synclog.snapshot_clients('wp', :'wp_log1') c) s;
SELECT count(*) AS clients,
	   bool_and(client_id = 'client-' || lpad(n::text, 5, '0')) AS in_order,
	   count(*) FILTER (WHERE client_seq = n * 3 + 1) AS rewritten,
	   bool_and(CASE WHEN client_seq = n * 3 + 1 THEN client_lsn > 2500 ELSE client_lsn = n END) AS lsns_ok
  FROM (SELECT c.*, row_number() OVER () AS n
		  FROM synclog.snapshot_clients('wp', :'wp_log2') c) s;

-- snapshot_info counts and lists them all; its key count is what is left
-- of the hash's items after the clients.
SELECT client_count, key_count,
	   (SELECT count(*) FROM jsonb_object_keys(clients)) AS json_clients,
	   clients -> 'client-01001' AS c1001, clients -> 'client-02500' AS c2500
  FROM synclog.snapshot_info('wp', :'wp_log2');

-- The hash recomputed from the pages equals the rotation's.
SELECT l.generation, l.snapshot_hash = synclog.recompute_hash('wp', l.log_id) AS hash_ok,
	   (synclog.hash_info(l.snapshot_hash)).item_count AS items
  FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'wp' ORDER BY l.generation;

SELECT synclog.drop_doc('wp');
