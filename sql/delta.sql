-- The delta codec through SQL: encoding, decoding, and every malformed input.

-- Encoding: version 1, u32le count, then (u32le klen, key, u32le vlen | ffffffff, value).
SELECT synclog.encode_delta(ARRAY['\x6b31', '\x6b32']::bytea[], ARRAY['\x7631', NULL]::bytea[]);
SELECT synclog.encode_delta('{}'::bytea[], '{}'::bytea[]);
-- An empty key and an empty value are allowed.
SELECT synclog.encode_delta(ARRAY['']::bytea[], ARRAY['']::bytea[]);

-- Round trip, in the order given.
SELECT * FROM synclog.decode_delta(synclog.encode_delta(
	ARRAY['\x03', '\x01', '\x02']::bytea[], ARRAY['\xaa', NULL, '\xbbcc']::bytea[]));
SELECT count(*) FROM synclog.decode_delta('\x0100000000');

-- Bad arrays.
SELECT synclog.encode_delta(NULL, '{}'::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.encode_delta(ARRAY['\x01']::bytea[], '{}'::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.encode_delta(ARRAY['\x01', NULL]::bytea[], ARRAY['\x01', '\x02']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.encode_delta(ARRAY['\x01', '\x02', '\x01']::bytea[], ARRAY['\x01', '\x02', NULL]::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.encode_delta(ARRAY[['\x01'], ['\x02']]::bytea[], ARRAY[['\x01'], ['\x02']]::bytea[]);
\echo :LAST_ERROR_SQLSTATE
-- The key limit is 1024 bytes.
SELECT length(synclog.encode_delta(ARRAY[decode(repeat('ab', 1024), 'hex')], ARRAY['\x00'::bytea]));
SELECT synclog.encode_delta(ARRAY[decode(repeat('ab', 1025), 'hex')], ARRAY['\x00'::bytea]);
\echo :LAST_ERROR_SQLSTATE

-- Malformed binary deltas: each names the problem and the byte offset.
SELECT * FROM synclog.decode_delta(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x0200000000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x01000000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x010100000002000000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x0101000000050000006b31');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x0101000000020000006b3102000000763199');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x0101000000020000006b31ffffffff00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x0102000000020000006b31ffffffff020000006b31ffffffff');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x01010000000104000000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x01ffffffff');
\echo :LAST_ERROR_SQLSTATE

-- Limits a DBA sets.
SET synclog.max_delta_changes = 2;
SELECT synclog.encode_delta(ARRAY['\x01', '\x02', '\x03']::bytea[], ARRAY['\x01', '\x02', '\x03']::bytea[]);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM synclog.decode_delta('\x0103000000');
\echo :LAST_ERROR_SQLSTATE
RESET synclog.max_delta_changes;
SET synclog.max_delta_size = '1kB';
SELECT synclog.encode_delta(ARRAY['\x01']::bytea[], ARRAY[decode(repeat('00', 1100), 'hex')]);
\echo :LAST_ERROR_SQLSTATE
RESET synclog.max_delta_size;

-- A huge announced count costs memory only in proportion to the delta's
-- bytes (issue 14): five bytes announcing 10 million changes used to
-- allocate 300 MB before the decoder found them missing.  The backend's
-- peak resident size (Linux) must not grow by more than a few MB.
SET synclog.max_delta_changes = 10000000;
SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+) kB'))[1]::bigint AS hwm_before \gset
SELECT * FROM synclog.decode_delta('\x0180969800');
\echo :LAST_ERROR_SQLSTATE
-- ... and with one smallest change there, the error is still the truncation.
SELECT * FROM synclog.decode_delta('\x018096980000000000ffffffff');
\echo :LAST_ERROR_SQLSTATE
SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+) kB'))[1]::bigint
	- :hwm_before < 16384 AS peak_memory_bounded;
RESET synclog.max_delta_changes;

-- synclog.max_delta_size stops at 256 MB, so that any accepted delta can be
-- read back in text format (hex, twice its size, under the 1 GB limit).
SET synclog.max_delta_size = '256MB';
SHOW synclog.max_delta_size;
SET synclog.max_delta_size = '262145kB';
\echo :LAST_ERROR_SQLSTATE
SET synclog.max_delta_size = '1GB';
\echo :LAST_ERROR_SQLSTATE
RESET synclog.max_delta_size;
