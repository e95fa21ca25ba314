-- Forgetting clients: synclog.forget_client appends a retire entry
-- (client_seq -1, the empty delta) that removes the client's watermark,
-- and drops the client's position; the client id is then new again.

SELECT synclog.create_doc('fg/doc') IS NOT NULL AS created;
SELECT synclog.append('fg/doc', ARRAY['\x01']::bytea[], ARRAY['a']::bytea[], 'w1', 5);
SELECT synclog.append('fg/doc', ARRAY['\x02']::bytea[], ARRAY['b']::bytea[], 'w2', 9);
SELECT log_id AS fg_log FROM synclog.current_log('fg/doc') \gset
SELECT synclog.ack('fg/doc', 'w1', :'fg_log', 2);
SELECT synclog.ack('fg/doc', 'reader-only', :'fg_log', 2);
SELECT clients FROM synclog.doc WHERE name = 'fg/doc';

-- The watermark is in the active log: the retire entry follows it.
SELECT synclog.forget_client('fg/doc', 'w1') AS retire_lsn;
SELECT lsn, encode(delta, 'hex') AS delta, client_id, client_seq
  FROM synclog.read('fg/doc', :'fg_log', 2);
SELECT clients FROM synclog.doc WHERE name = 'fg/doc';
SELECT client_id FROM synclog.client_pos ORDER BY client_id;
-- A client with only a position: the position goes, no entry (NULL).
SELECT synclog.forget_client('fg/doc', 'reader-only') IS NULL AS no_watermark;
SELECT count(*) AS positions FROM synclog.client_pos;
SELECT head_lsn FROM synclog.current_log('fg/doc');
-- Neither a watermark nor a position (any more): 42704.
SELECT synclog.forget_client('fg/doc', 'w1');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.forget_client('fg/doc', 'never-seen');
\echo :LAST_ERROR_SQLSTATE

-- The retired id is new: a lower client_seq is a new mutation, counted
-- as a new client; its retry is deduplicated as before.
SELECT synclog.append('fg/doc', ARRAY['\x03']::bytea[], ARRAY['c']::bytea[], 'w1', 1) AS lsn;
SELECT synclog.append('fg/doc', ARRAY['\x03']::bytea[], ARRAY['c']::bytea[], 'w1', 1) AS retry_lsn;
SELECT clients FROM synclog.doc WHERE name = 'fg/doc';

-- Through a rotation: the fold writes the retirement as a deletion of the
-- watermark, the snapshot has no watermark for it, and the stored hash
-- equals a recomputation.
SELECT synclog.forget_client('fg/doc', 'w2') AS retire_lsn;
SELECT synclog.compact('fg/doc') AS fg_log2 \gset
SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients('fg/doc', :'fg_log2');
SELECT snapshot_hash = synclog.recompute_hash('fg/doc', log_id) AS hash_ok
  FROM synclog.current_log('fg/doc');
SELECT convert_from(key, 'UTF8') AS client_id, lsn, kind FROM synclog.kv
 WHERE ns = 2 AND doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'fg/doc')
 ORDER BY key, lsn;
-- w2's newest entry is now in a sealed log and its state version is the
-- retirement: w2 is new, w1 (a watermark in the state) deduplicates.
SELECT synclog.append('fg/doc', ARRAY['\x04']::bytea[], ARRAY['d']::bytea[], 'w2', 1) AS lsn;
SELECT synclog.append('fg/doc', ARRAY['\x04']::bytea[], ARRAY['d']::bytea[], 'w1', 1) AS retry_lsn;
SELECT clients FROM synclog.doc WHERE name = 'fg/doc';
-- Retiring a watermark that lives only in the state (its entry sealed).
SELECT synclog.compact('fg/doc') IS NOT NULL AS rotated;
SELECT synclog.forget_client('fg/doc', 'w1') AS retire_lsn;
SELECT synclog.compact('fg/doc') AS fg_log4 \gset
SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients('fg/doc', :'fg_log4');
SELECT snapshot_hash = synclog.recompute_hash('fg/doc', log_id) AS hash_ok
  FROM synclog.current_log('fg/doc');
SELECT clients FROM synclog.doc WHERE name = 'fg/doc';
-- Once the logs are collected, the retirements leave no rows behind, and
-- the ids stay new.
SET synclog.retention = 0;
SELECT synclog.compact('fg/doc') IS NULL AS nothing_to_rotate;
SELECT synclog.append('fg/doc', ARRAY['\x05']::bytea[], ARRAY['e']::bytea[]) > 0 AS appended;
SELECT synclog.compact('fg/doc') IS NOT NULL AS rotated;
SELECT synclog.gc() AS collected;
SELECT convert_from(key, 'UTF8') AS client_id, lsn, kind FROM synclog.kv
 WHERE ns = 2 AND doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'fg/doc')
 ORDER BY key, lsn;
SELECT synclog.append('fg/doc', ARRAY['\x06']::bytea[], ARRAY['f']::bytea[], 'w1', 0) > 0 AS w1_new;
SELECT clients FROM synclog.doc WHERE name = 'fg/doc';
RESET synclog.retention;

-- A full document takes a new client once one is forgotten.
SET synclog.max_clients_per_doc = 2;
SELECT synclog.append('fg/doc', ARRAY['\x07']::bytea[], ARRAY['g']::bytea[], 'w3', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.forget_client('fg/doc', 'w2') > 0 AS retired;
SELECT synclog.append('fg/doc', ARRAY['\x07']::bytea[], ARRAY['g']::bytea[], 'w3', 1) > 0 AS appended;
RESET synclog.max_clients_per_doc;

-- Only the server writes retire entries: appends refuse client_seq -1.
SELECT synclog.append('fg/doc', ARRAY[]::bytea[], ARRAY[]::bytea[], 'w3', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append_delta('fg/doc', '\x0100000000', 'w3', -1);
\echo :LAST_ERROR_SQLSTATE

-- Arguments.
SELECT synclog.forget_client(NULL, 'w1');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.forget_client('fg/doc', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.forget_client('fg/doc', '');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.forget_client('fg/doc', repeat('x', 201));
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.forget_client('fg/none', 'w1');
\echo :LAST_ERROR_SQLSTATE
BEGIN READ ONLY;
SELECT synclog.forget_client('fg/doc', 'w3');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SET synclog.client_retention = -1;
\echo :LAST_ERROR_SQLSTATE

-- Who may forget: admins that grant_doc does not confine.
CREATE ROLE regress_fg_admin;
CREATE ROLE regress_fg_writer;
SELECT synclog.grant_role('regress_fg_admin', 'admin');
SELECT synclog.grant_role('regress_fg_writer', 'writer');
SET ROLE regress_fg_writer;
SELECT synclog.forget_client('fg/doc', 'w3');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT synclog.grant_doc('regress_fg_admin', 'fg/%', 'write');
SET ROLE regress_fg_admin;
SELECT synclog.forget_client('fg/doc', 'w3');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT synclog.revoke_doc('regress_fg_admin');
SET ROLE regress_fg_admin;
SELECT synclog.forget_client('fg/doc', 'w3') > 0 AS retired;
RESET ROLE;
SELECT synclog.revoke_role('regress_fg_admin');
SELECT synclog.revoke_role('regress_fg_writer');
DROP ROLE regress_fg_admin, regress_fg_writer;

-- The final state agrees with its recomputation, and the counter with the
-- watermarks the state and the active log hold.
SELECT synclog.compact('fg/doc') IS NOT NULL AS rotated;
SELECT snapshot_hash = synclog.recompute_hash('fg/doc', log_id) AS hash_ok
  FROM synclog.current_log('fg/doc');
SELECT d.clients = (SELECT count(*) FROM synclog.snapshot_clients('fg/doc', c.log_id)) AS counted
  FROM synclog.doc d, synclog.current_log('fg/doc') c WHERE d.name = 'fg/doc';
SELECT synclog.drop_doc('fg/doc');
