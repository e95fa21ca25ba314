-- The protocol test vectors of PROTOCOL.md ("Test vectors"), computed by the
-- server.  Every hex string PROTOCOL.md gives as a vector's result is
-- printed here; test/core pins the same values for the C core.

-- (a) The hash of the empty state, and what the aggregate gives for no rows.
SELECT 'a' AS vector, encode(synclog.empty_hash(), 'hex') AS hash;
SELECT 'a' AS vector, encode(synclog.state_hash(k, v), 'hex') AS hash
  FROM (VALUES ('\x00'::bytea, '\x00'::bytea)) t(k, v) WHERE false;

-- (b) State {key 01 -> "hello"}.
SELECT 'b' AS vector, encode(synclog.state_hash(k, v), 'hex') AS hash
  FROM (VALUES ('\x01'::bytea, 'hello'::bytea)) t(k, v);

-- (c) State {00000001 -> 4096 x ab, 00000002 -> 4096 x cd}: each item, then both.
SELECT 'c' AS vector, encode(k, 'hex') AS key,
	   substr(i.sum, 1, 16) || ':' || substr(i.sum, 17) AS item_hash
  FROM (VALUES ('\x00000001'::bytea, decode(repeat('ab', 4096), 'hex')),
			   ('\x00000002'::bytea, decode(repeat('cd', 4096), 'hex'))) t(k, v),
	   synclog.hash_info(synclog.hash_add_data(synclog.empty_hash(), k, v)) i
 ORDER BY k;
SELECT 'c' AS vector, encode(synclog.state_hash(k, v), 'hex') AS hash
  FROM (VALUES ('\x00000001'::bytea, decode(repeat('ab', 4096), 'hex')),
			   ('\x00000002'::bytea, decode(repeat('cd', 4096), 'hex'))) t(k, v);

-- (d) State (b) plus the watermark client-a -> (seq 7, lsn 3): the
-- watermark item alone, then the whole state (its sum carries from the low
-- into the high 64 bits).
SELECT 'd' AS vector, substr(i.sum, 1, 16) || ':' || substr(i.sum, 17) AS watermark_item_hash,
	   i.item_count, i.item_bytes
  FROM synclog.hash_info(synclog.hash_add_client(synclog.empty_hash(), 'client-a', 7, 3)) i;
SELECT 'd' AS vector, encode(synclog.hash_combine(
		(SELECT synclog.state_hash(k, v) FROM (VALUES ('\x01'::bytea, 'hello'::bytea)) t(k, v)),
		(SELECT synclog.state_hash(c, s, l) FROM (VALUES ('client-a', 7::bigint, 3::bigint)) t(c, s, l))),
	   'hex') AS hash;
SELECT 'd' AS vector, substr(i.sum, 1, 16) || ':' || substr(i.sum, 17) AS sum_hi_lo,
	   i.item_count, i.item_bytes
  FROM synclog.hash_info(synclog.hash_combine(
		synclog.hash_add_data(synclog.empty_hash(), '\x01', 'hello'),
		synclog.hash_add_client(synclog.empty_hash(), 'client-a', 7, 3))) i;

-- (e) {"a" -> "b"} and {"b" -> "a"}: same count and bytes, different hashes.
WITH e AS (
	SELECT (SELECT synclog.state_hash(k, v) FROM (VALUES ('a'::bytea, 'b'::bytea)) t(k, v)) AS e1,
		   (SELECT synclog.state_hash(k, v) FROM (VALUES ('b'::bytea, 'a'::bytea)) t(k, v)) AS e2)
SELECT 'e' AS vector, encode(e1, 'hex') AS e1_hash, encode(e2, 'hex') AS e2_hash,
	   e1 <> e2 AS differ
  FROM e;
SELECT 'e' AS vector, convert_from(k, 'UTF8') AS key,
	   substr(i.sum, 1, 16) || ':' || substr(i.sum, 17) AS item_hash
  FROM (VALUES ('a'::bytea, 'b'::bytea), ('b'::bytea, 'a'::bytea)) t(k, v),
	   synclog.hash_info(synclog.hash_add_data(synclog.empty_hash(), k, v)) i
 ORDER BY k;

-- (f) The delta [("k1", "v1"), ("k2", delete)] and the empty delta.
SELECT 'f1' AS vector,
	   encode(synclog.encode_delta(ARRAY['k1', 'k2']::bytea[], ARRAY['v1', NULL]::bytea[]), 'hex') AS delta;
SELECT 'f2' AS vector, encode(synclog.encode_delta('{}'::bytea[], '{}'::bytea[]), 'hex') AS delta;
-- They decode back to the same changes.
SELECT 'f1' AS vector, convert_from(key, 'UTF8') AS key, convert_from(value, 'UTF8') AS value
  FROM synclog.decode_delta('\x0102000000020000006b31020000007631020000006b32ffffffff');
SELECT 'f2' AS vector, count(*) AS changes FROM synclog.decode_delta('\x0100000000');

-- (g) The item hash of (b), high64:low64.  hash_info shows the 128-bit sum
-- as 32 hex digits, high half first; with one item the sum is that item's
-- hash.  (Item hashes above are shown the same way.)
SELECT 'g' AS vector, substr(i.sum, 1, 16) || ':' || substr(i.sum, 17) AS item_hash,
	   i.sum AS canonical_digest, i.algorithm, i.item_count, i.item_bytes
  FROM synclog.hash_info(synclog.hash_add_data(synclog.empty_hash(), '\x01', 'hello')) i;

-- (h) The NOTIFY channel of the document "notes" under the channel key
-- 00 01 02 ... 1f (a real database has a random key).
BEGIN;
UPDATE synclog.channel_key SET key = decode('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
SELECT 'h' AS vector, synclog.channel('notes') AS channel;
ROLLBACK;

-- (i) The server's fold reaches state (d): three entries, a rotation, and
-- the end-log marker carries hash (d).  Log ids are random, so only
-- comparisons with them are printed.
SELECT synclog.create_doc('vectors') AS log1 \gset
SELECT synclog.append('vectors', ARRAY['\x01', '\x02']::bytea[], ARRAY['x', 'y']::bytea[]);
SELECT synclog.append('vectors', ARRAY['\x02']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.append('vectors', ARRAY['\x01']::bytea[], ARRAY['hello']::bytea[], 'client-a', 7);
SELECT synclog.compact('vectors') AS log2 \gset
SELECT 'i' AS vector, lsn, kind, encode(delta, 'hex') AS delta, client_id, client_seq
  FROM synclog.read('vectors', :'log1', 0) WHERE kind = 'delta';
SELECT 'i' AS vector, lsn, kind, next_log_id = :'log2' AS next_is_log2,
	   encode(snapshot_hash, 'hex') AS marker_hash
  FROM synclog.read('vectors', :'log1', 3);
SELECT 'i' AS vector, base_lsn, encode(snapshot_hash, 'hex') AS snapshot_hash,
	   snapshot_hash = synclog.recompute_hash('vectors', log_id) AS recomputed
  FROM synclog.current_log('vectors');
-- The stored watermark value: i64le client_seq || i64le lsn.
SELECT 'i' AS vector, convert_from(key, 'UTF8') AS client_id, encode(value, 'hex') AS watermark
  FROM synclog.kv
 WHERE ns = 2 AND doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'vectors');

-- (j) Retiring a watermark: forget_client appends the retire entry of
-- client-a at LSN 4; the next marker carries hash (b) again (j1).  The
-- client id is then new: client_seq 1 (below its retired 7) appends at
-- LSN 5, and the marker after it carries hash (j2).
SELECT synclog.forget_client('vectors', 'client-a') AS retire_lsn;
SELECT synclog.compact('vectors') AS log3 \gset
SELECT 'j1' AS vector, lsn, kind, encode(delta, 'hex') AS delta, client_id, client_seq
  FROM synclog.read('vectors', :'log2', 3) WHERE kind = 'delta';
SELECT 'j1' AS vector, lsn, kind, encode(snapshot_hash, 'hex') AS marker_hash
  FROM synclog.read('vectors', :'log2', 4);
SELECT synclog.append_delta('vectors', '\x0100000000', 'client-a', 1);
SELECT synclog.compact('vectors') IS NOT NULL AS rotated;
SELECT 'j2' AS vector, lsn, kind, encode(snapshot_hash, 'hex') AS marker_hash
  FROM synclog.read('vectors', :'log3', 5);
SELECT 'j2' AS vector, substr(w.sum, 1, 16) || ':' || substr(w.sum, 17) AS watermark_item_hash,
	   substr(m.sum, 1, 16) || ':' || substr(m.sum, 17) AS sum_hi_lo, m.item_count, m.item_bytes
  FROM synclog.hash_info(synclog.hash_add_client(synclog.empty_hash(), 'client-a', 1, 5)) w,
	   synclog.read('vectors', :'log3', 5) r, synclog.hash_info(r.snapshot_hash) m;
SELECT 'j2' AS vector, base_lsn, snapshot_hash = synclog.recompute_hash('vectors', log_id) AS recomputed
  FROM synclog.current_log('vectors');

-- (k) Chain values (PROTOCOL.md section 4a) of the three entries of (i):
-- the server's stored values, as read2 serves them with their groups and
-- as the end-log marker carries the last; then the two core vectors k1, k2
-- (entry 1: delta f1, no client; entry 2: delta f2, client "client-a",
-- seq 7) through synclog.chain_next.
SELECT 'k' AS vector, lsn, kind, encode(chain, 'hex') AS chain, group_lsn, group_end
  FROM synclog.read2('vectors', :'log1', 0, '\x00000000000000000000000000000000');
SELECT 'k' AS vector, encode(synclog.base_chain('vectors', :'log2'), 'hex') AS log2_base_chain;
SELECT 'k' AS vector, encode(k1, 'hex') AS k1_chain,
	   encode(synclog.chain_next(k1, 2, '\x0100000000', 'client-a', 7), 'hex') AS k2_chain
  FROM (SELECT synclog.chain_next('\x00000000000000000000000000000000', 1,
			   '\x0102000000020000006b31020000007631020000006b32ffffffff') AS k1) k;
-- (m) Range buckets and range hashes (PROTOCOL.md section 11a): the bucket
-- of a few items; the range hashes of states (c) and (d), one per
-- non-empty bucket, and their sum, which is the hash of (c) and (d).
SELECT 'm' AS vector, ns, encode(key, 'hex') AS key, synclog.bucket(ns, key) AS bucket
  FROM (VALUES (1::smallint, ''::bytea), (1::smallint, 'a'), (1::smallint, 'b'), (2::smallint, 'a'),
			   (1::smallint, '\x01'), (1::smallint, '\x00000001'), (1::smallint, '\x00000002'),
			   (2::smallint, 'client-a')) v(ns, key);
SELECT synclog.create_doc('vectors-c') IS NOT NULL AS created;
SELECT synclog.append('vectors-c', ARRAY['\x00000001', '\x00000002']::bytea[],
	ARRAY[decode(repeat('ab', 4096), 'hex'), decode(repeat('cd', 4096), 'hex')]);
SELECT synclog.compact('vectors-c') AS log_c \gset
SELECT 'm' AS vector, 'c' AS state, bucket, encode(hash, 'hex') AS range_hash
  FROM synclog.range_hashes('vectors-c', :'log_c') ORDER BY bucket;
SELECT 'm' AS vector, 'c' AS state, encode(synclog.hash_combine(a.hash, b.hash), 'hex') AS sum
  FROM synclog.range_hashes('vectors-c', :'log_c') a, synclog.range_hashes('vectors-c', :'log_c') b
 WHERE a.bucket < b.bucket;
-- State (d): key 01 -> "hello" and client-a's watermark (7, 3), written at LSN 3.
SELECT synclog.create_doc('vectors-d') IS NOT NULL AS created;
SELECT synclog.append('vectors-d', ARRAY['x']::bytea[], ARRAY['y']::bytea[]);
SELECT synclog.append('vectors-d', ARRAY['x']::bytea[], ARRAY[NULL]::bytea[]);
SELECT synclog.append('vectors-d', ARRAY['\x01']::bytea[], ARRAY['hello']::bytea[], 'client-a', 7);
SELECT synclog.compact('vectors-d') AS log_d \gset
SELECT 'm' AS vector, 'd' AS state, bucket, encode(hash, 'hex') AS range_hash
  FROM synclog.range_hashes('vectors-d', :'log_d') ORDER BY bucket;
SELECT 'm' AS vector, 'd' AS state, encode(synclog.hash_combine(a.hash, b.hash), 'hex') AS sum
  FROM synclog.range_hashes('vectors-d', :'log_d') a, synclog.range_hashes('vectors-d', :'log_d') b
 WHERE a.bucket < b.bucket;
SELECT synclog.drop_doc('vectors-c');
SELECT synclog.drop_doc('vectors-d');

SELECT synclog.drop_doc('vectors');
