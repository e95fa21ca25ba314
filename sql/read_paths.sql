-- Read paths that the other files do not take: synclog.chain_at, and
-- deltas stored out of line (TOAST), compressed or not, read by a version
-- 1 reader (synclog.read) and by version 2 readers that accept zstd or not
-- (delta_store.c: the version 1 size from log_bytes tells a compressed
-- delta from a plain one without fetching it).

SELECT synclog.create_doc('rp') AS log1 \gset
SELECT synclog.base_chain('rp', :'log1') AS zero \gset
-- 1: large and compressible, but still large once compressed (stored out
-- of line, version 2); 2: large random bytes (out of line, version 1);
-- 3: small.
CREATE TEMP TABLE rp_sent AS
SELECT 1 AS lsn, synclog.encode_delta(ARRAY['\x01'::bytea],
	   ARRAY[(SELECT convert_to(string_agg(md5(g::text) || repeat('-', 40), ''), 'UTF8')
				FROM generate_series(1, 2000) g)]) AS delta
UNION ALL
SELECT 2, synclog.encode_delta(ARRAY['\x02'::bytea],
	   ARRAY[(SELECT decode(string_agg(md5((g * 7)::text), ''), 'hex')
				FROM generate_series(1, 1000) g)])
UNION ALL
SELECT 3, synclog.encode_delta(ARRAY['\x03'::bytea], ARRAY['\x03'::bytea]);
SELECT synclog.append('rp', array_agg(d.key ORDER BY d.key), array_agg(d.value ORDER BY d.key))
  FROM rp_sent s, synclog.decode_delta(s.delta) d GROUP BY s.lsn ORDER BY s.lsn;

SELECT e.lsn, get_byte(e.delta, 0) AS version, octet_length(e.delta) > 2000 AS large
  FROM synclog.entry e WHERE e.doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'rp')
 ORDER BY e.lsn;

-- Every reader gets the version 1 bytes that were appended, except one
-- that accepts zstd: it gets entry 1 as stored.
SELECT r.lsn, r.delta = s.delta AS same_as_sent
  FROM synclog.read('rp', :'log1', 0) r JOIN rp_sent s USING (lsn) ORDER BY r.lsn;
SELECT r.lsn, r.delta = s.delta AS same_as_sent
  FROM synclog.read2('rp', :'log1', 0, :'zero') r JOIN rp_sent s USING (lsn) ORDER BY r.lsn;
SELECT r.lsn, r.delta = s.delta AS same_as_sent
  FROM synclog.read2('rp', :'log1', 0, :'zero', accept => '{}') r JOIN rp_sent s USING (lsn) ORDER BY r.lsn;
SELECT r.lsn, get_byte(r.delta, 0) AS version, r.delta = s.delta AS same_as_sent
  FROM synclog.read2('rp', :'log1', 0, :'zero', accept => '{zstd}') r JOIN rp_sent s USING (lsn) ORDER BY r.lsn;

-- chain_at: the chain value read2 gives each entry, and the base chain at
-- the log's base; over the version 1 bytes.
SELECT r.lsn, synclog.chain_at('rp', :'log1', r.lsn) = r.chain AS chain_at_matches
  FROM synclog.read2('rp', :'log1', 0, :'zero') r ORDER BY r.lsn;
SELECT synclog.chain_at('rp', :'log1', 0) = :'zero' AS at_base;
SELECT synclog.chain_at('rp', :'log1', 3) =
	   synclog.chain_next(synclog.chain_next(synclog.chain_next(:'zero',
			1, (SELECT delta FROM rp_sent WHERE lsn = 1)),
			2, (SELECT delta FROM rp_sent WHERE lsn = 2)),
			3, (SELECT delta FROM rp_sent WHERE lsn = 3)) AS folded;
\set VERBOSITY sqlstate
SELECT synclog.chain_at('rp', :'log1', 4);
SELECT synclog.chain_at('rp', 'no-such-log', 1);
\set VERBOSITY default
-- After a rotation the sealed log still answers, the new one from its base.
SELECT synclog.compact('rp') AS log2 \gset
SELECT synclog.chain_at('rp', :'log1', 2) = (SELECT chain FROM synclog.read2('rp', :'log1', 0, :'zero') WHERE lsn = 2) AS sealed_log;
SELECT synclog.chain_at('rp', :'log2', 3) = synclog.base_chain('rp', :'log2') AS new_log_base;
-- A stored delta whose codec this server does not know is corruption
-- (XX001) for every reader, also one that accepts zstd.
UPDATE synclog.entry SET delta = set_byte(delta, 1, 9)
 WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'rp') AND lsn = 1;
\set VERBOSITY sqlstate
SELECT count(*) FROM synclog.read2('rp', :'log1', 0, :'zero', accept => '{zstd}');
SELECT count(*) FROM synclog.read2('rp', :'log1', 0, :'zero');
SELECT count(*) FROM synclog.read('rp', :'log1', 0);
\set VERBOSITY default
SELECT synclog.drop_doc('rp');
