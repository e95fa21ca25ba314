-- Argument checks that the other files reach only in part: a NULL in the
-- second or later place of a check, a NULL hash state, a duplicate key in
-- a client's encoded delta, and a long key in a message (shown cut).  And
-- the drop guard, which lets a DROP EXTENSION of other extensions through.

\set VERBOSITY sqlstate
SELECT synclog.hash_add_data(NULL, '\x01', '\x01');
SELECT synclog.hash_add_client(synclog.empty_hash(), 'c', NULL, 1);
SELECT synclog.hash_add_client(synclog.empty_hash(), 'c', 1, NULL);
SELECT synclog.hash_combine(synclog.empty_hash(), NULL);
SELECT synclog.hash_info(NULL);
SELECT synclog.encode_delta('{}', NULL);
SELECT synclog.create_doc('arg') IS NOT NULL AS created;
SELECT synclog.append('arg', '{}', NULL);
SELECT synclog.grant_doc(current_user::regrole, 'arg%', NULL);
\set VERBOSITY default
-- can_read of no document is false, not an error
SELECT synclog.can_read(NULL);

-- Key 'k' twice, in a delta a client encoded.
SELECT synclog.append_delta('arg', '\x0102000000010000006b0100000076010000006b0100000076'::bytea);
SELECT synclog.decode_delta('\x0102000000010000006b0100000076010000006b0100000076'::bytea);
-- A duplicate key longer than 32 bytes is shown cut.
SELECT synclog.encode_delta(ARRAY[decode(repeat('ab', 40), 'hex'), decode(repeat('ab', 40), 'hex')],
							ARRAY['\x01', '\x02']::bytea[]);
SELECT head_lsn FROM synclog.status WHERE doc = 'arg';

-- With a document in the database, the guard stops only synclog's drop.
DROP EXTENSION IF EXISTS regress_no_such_extension;
DROP EXTENSION IF EXISTS regress_no_such_extension, regress_nor_this_one RESTRICT;
\set VERBOSITY sqlstate
DROP EXTENSION IF EXISTS regress_no_such_extension, synclog;
\set VERBOSITY default
SELECT synclog.drop_doc('arg');
