-- Clients per document are bounded (synclog.max_clients_per_doc), and a
-- client's position belongs to the role that first recorded it.

SET synclog.max_clients_per_doc = 3;
SELECT synclog.create_doc('cl/doc') IS NOT NULL AS created;
SELECT synclog.append('cl/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], 'c' || i, 1)
  FROM generate_series(1, 3) i;
SELECT clients FROM synclog.doc WHERE name = 'cl/doc';
-- A fourth client is refused; nothing is written.
SELECT synclog.append('cl/doc', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[], 'c4', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT head_lsn FROM synclog.current_log('cl/doc');
-- Known clients, retries and appends without a client go on.
SELECT synclog.append('cl/doc', ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[], 'c1', 2);
SELECT synclog.append('cl/doc', ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[], 'c1', 2);
SELECT synclog.append('cl/doc', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]);
-- The count survives a rotation (the watermarks move into the state) and
-- the collection of the log that held the clients' entries.
SELECT synclog.compact('cl/doc') IS NOT NULL AS rotated;
SELECT synclog.compact('cl/doc') IS NULL AS nothing_to_rotate;
SELECT synclog.append('cl/doc', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[], 'c2', 2);
SELECT synclog.compact('cl/doc') IS NOT NULL AS rotated;
SET synclog.retention = 0;
SELECT synclog.gc() >= 0 AS collected;
SELECT synclog.append('cl/doc', ARRAY['\x06']::bytea[], ARRAY['\x06']::bytea[], 'c5', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.append('cl/doc', ARRAY['\x06']::bytea[], ARRAY['\x06']::bytea[], 'c3', 1) AS retry_lsn;
SELECT clients FROM synclog.doc WHERE name = 'cl/doc';
-- A rolled back first append does not count.
RESET synclog.max_clients_per_doc;
BEGIN;
SELECT synclog.append('cl/doc', ARRAY['\x07']::bytea[], ARRAY['\x07']::bytea[], 'c9', 1) > 0 AS appended;
SELECT clients FROM synclog.doc WHERE name = 'cl/doc';
ROLLBACK;
SELECT clients FROM synclog.doc WHERE name = 'cl/doc';
-- The limit's range.
SET synclog.max_clients_per_doc = 0;
\echo :LAST_ERROR_SQLSTATE

-- Positions: owned by the role that first recorded them.
CREATE ROLE regress_cl_a;
CREATE ROLE regress_cl_b;
SELECT synclog.grant_role('regress_cl_a', 'reader');
SELECT synclog.grant_role('regress_cl_b', 'reader');
SELECT log_id AS cl_log, head_lsn AS cl_lsn FROM synclog.current_log('cl/doc') \gset
SET ROLE regress_cl_a;
SELECT synclog.ack('cl/doc', 'phone-a', :'cl_log', :cl_lsn);
SELECT synclog.ack('cl/doc', 'phone-a', :'cl_log', :cl_lsn);
RESET ROLE;
SET ROLE regress_cl_b;
SELECT synclog.ack('cl/doc', 'phone-a', :'cl_log', :cl_lsn);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.ack('cl/doc', 'phone-b', :'cl_log', :cl_lsn);
RESET ROLE;
SELECT client_id, owner FROM synclog.client_pos ORDER BY client_id;
-- A member of the owning role may move it; a superuser too.
GRANT regress_cl_a TO regress_cl_b;
SET ROLE regress_cl_b;
SELECT synclog.ack('cl/doc', 'phone-a', :'cl_log', :cl_lsn);
RESET ROLE;
SELECT synclog.ack('cl/doc', 'phone-a', :'cl_log', :cl_lsn);
-- New positions are bounded too: no role can create clients without end.
SET synclog.max_clients_per_doc = 2;
SET ROLE regress_cl_b;
SELECT synclog.ack('cl/doc', 'phone-c', :'cl_log', :cl_lsn);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.ack('cl/doc', 'phone-b', :'cl_log', :cl_lsn);
RESET ROLE;
RESET synclog.max_clients_per_doc;
SELECT downloads FROM synclog.stats WHERE doc = 'cl/doc';

-- Monitoring: where each client is, and a kind that only reads the views.
SELECT synclog.append('cl/doc', ARRAY['\x08']::bytea[], ARRAY['\x0808']::bytea[]) > 0 AS appended;
SELECT doc, client_id, owner, log_state, lag_entries, lag_bytes, in_retired_log
  FROM synclog.clients ORDER BY client_id;
SELECT synclog.compact('cl/doc') IS NOT NULL AS rotated;
SELECT synclog.append('cl/doc', ARRAY['\x09']::bytea[], ARRAY['\x09']::bytea[]) > 0 AS appended;
SELECT client_id, log_state, lag_entries, lag_bytes FROM synclog.clients ORDER BY client_id;
CREATE ROLE regress_cl_mon;
SELECT synclog.grant_role('regress_cl_mon', 'monitor');
SET ROLE regress_cl_mon;
SELECT count(*) AS positions FROM synclog.clients;
SELECT doc, active_entries FROM synclog.status WHERE doc = 'cl/doc';
SELECT count(*) FROM synclog.read('cl/doc', :'cl_log', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.ack('cl/doc', 'phone-m', :'cl_log', :cl_lsn);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT synclog.revoke_role('regress_cl_mon');
DROP ROLE regress_cl_mon;

SELECT synclog.revoke_role('regress_cl_a');
SELECT synclog.revoke_role('regress_cl_b');
SELECT synclog.drop_doc('cl/doc');
DROP ROLE regress_cl_a, regress_cl_b;
