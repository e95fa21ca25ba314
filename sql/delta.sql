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
