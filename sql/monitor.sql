-- Monitoring (README.md, "Monitoring"): status.due with all three
-- thresholds, the retired logs in status, and who may read
-- synclog.worker_status.  The worker itself is tested in
-- test/t/012_worker_status.pl.

-- rotation_due: the due test of the worker, for given figures.
SET synclog.rotate_entries = 10;
SET synclog.rotate_size = '1kB';
SET synclog.rotate_age = '1h';
SELECT synclog.rotation_due(9, 0, now(), NULL, NULL, NULL, true) AS below_entries,
	   synclog.rotation_due(10, 0, now(), NULL, NULL, NULL, true) AS entries,
	   synclog.rotation_due(1, 1024, now(), NULL, NULL, NULL, true) AS bytes,
	   synclog.rotation_due(1, 0, now() - interval '59 minutes', NULL, NULL, NULL, true) AS younger,
	   synclog.rotation_due(1, 0, now() - interval '1 hour', NULL, NULL, NULL, true) AS age,
	   synclog.rotation_due(10, 0, now(), NULL, NULL, NULL, false) AS not_auto;
-- Overrides: 0 turns a threshold off, NULL follows the setting.
SELECT synclog.rotation_due(10, 0, now(), 0, NULL, NULL, true) AS entries_off,
	   synclog.rotation_due(3, 0, now(), 3, NULL, NULL, true) AS own_entries,
	   synclog.rotation_due(1, 5000, now(), NULL, 0, NULL, true) AS bytes_off,
	   synclog.rotation_due(1, 0, now() - interval '1 day', NULL, NULL, interval '0', true) AS age_off,
	   synclog.rotation_due(1, 0, now() - interval '2 seconds', NULL, NULL, interval '1 second', true) AS own_age,
	   synclog.rotation_due(1, 0, now(), NULL, NULL, interval '10000 years', true) AS huge_age,
	   synclog.rotation_due(1, 0, NULL, NULL, NULL, NULL, true) AS no_first_append,
	   synclog.rotation_due(NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS all_null;
SET synclog.rotate_age = 0;
SELECT synclog.rotation_due(1, 0, now() - interval '1 year', NULL, NULL, NULL, true) AS age_setting_off;
RESET synclog.rotate_entries;
RESET synclog.rotate_size;
RESET synclog.rotate_age;

-- settings(): the settings typed, as the session sees them.
SET synclog.retention = '2d';
SET synclog.client_retention = '90min';
SET synclog.rotate_size = '1MB';
SELECT * FROM synclog.settings();
RESET synclog.retention;
RESET synclog.client_retention;
RESET synclog.rotate_size;

-- status.due counts the age threshold too, and agrees with compact_due.
SELECT synclog.create_doc(d) IS NOT NULL AS created
  FROM unnest(ARRAY['mon/aged', 'mon/young', 'mon/full']) d;
SELECT synclog.set_policy('mon/aged', rotate_entries => 0, rotate_bytes => 0, rotate_age => interval '1 second');
SELECT synclog.set_policy('mon/young', rotate_entries => 0, rotate_bytes => 0, rotate_age => interval '1 hour');
SELECT synclog.set_policy('mon/full', rotate_entries => 2, rotate_bytes => 0, rotate_age => interval '0');
SELECT synclog.append(d, ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]) > 0 AS appended
  FROM unnest(ARRAY['mon/aged', 'mon/young', 'mon/full', 'mon/full']) d;
-- A first append two seconds ago (set by hand: the clock cannot wait here).
UPDATE synclog.doc SET first_append_at = now() - interval '2 seconds' WHERE name = 'mon/aged';
SELECT doc, due, retired_logs, oldest_retired_sealed_at IS NULL AS none_retired,
	   oldest_retired_age IS NULL AS no_age, retired_bytes
  FROM synclog.status WHERE doc LIKE 'mon/%' ORDER BY doc;
SET synclog.rotate_min_interval = 0;
SELECT synclog.compact_due() AS rotated;
RESET synclog.rotate_min_interval;
SELECT doc, generation, due FROM synclog.status WHERE doc LIKE 'mon/%' ORDER BY doc;

-- Retired logs: how many, since when, and the delta bytes they hold; and
-- the clients with a watermark.
SELECT synclog.append('mon/young', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[], c, 1) > 0 AS appended
  FROM unnest(ARRAY['c1', 'c2']) c;
SELECT synclog.append('mon/young', ARRAY['\x02']::bytea[], ARRAY['\x0202']::bytea[]) > 0 AS appended;
SELECT synclog.compact('mon/young') IS NOT NULL AS rotated;
SELECT synclog.append('mon/young', ARRAY['\x03']::bytea[], ARRAY['\x030303']::bytea[]) > 0 AS appended;
SELECT synclog.compact('mon/young') IS NOT NULL AS rotated;
SELECT synclog.append('mon/young', ARRAY['\x04']::bytea[], ARRAY['\x04']::bytea[]) > 0 AS appended;
SELECT synclog.compact('mon/young') IS NOT NULL AS rotated;
SELECT doc, generation, retired_logs, retired_bytes, watermarks,
	   oldest_retired_sealed_at = (SELECT min(l.sealed_at) FROM synclog.log l
								   JOIN synclog.doc d USING (doc_id)
								   WHERE d.name = 'mon/young' AND l.state = 'retired') AS oldest,
	   oldest_retired_age = now() - oldest_retired_sealed_at AS age
  FROM synclog.status WHERE doc = 'mon/young';

-- worker_status: one row even before the worker ever ran.
SELECT state, rounds, rotations, rotations_failed, last_error IS NULL AS no_error
  FROM synclog.worker_status;
-- Admins and monitors read it; readers and writers do not; revoke_role
-- takes it back.
CREATE ROLE regress_mon_monitor;
CREATE ROLE regress_mon_reader;
SELECT synclog.grant_role('regress_mon_monitor', 'monitor');
SELECT synclog.grant_role('regress_mon_reader', 'reader');
SET ROLE regress_mon_monitor;
SELECT state FROM synclog.worker_status;
SELECT count(*) AS docs FROM synclog.status WHERE doc LIKE 'mon/%' AND due IS NOT NULL;
SELECT max_clients_per_doc FROM synclog.settings();
SELECT count(*) FROM synclog.worker_state;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_mon_reader;
SELECT state FROM synclog.worker_status;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT synclog.revoke_role('regress_mon_monitor');
SET ROLE regress_mon_monitor;
SELECT state FROM synclog.worker_status;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT synclog.revoke_role('regress_mon_reader');
DROP ROLE regress_mon_monitor, regress_mon_reader;

SELECT synclog.drop_doc(d) FROM unnest(ARRAY['mon/aged', 'mon/young', 'mon/full']) d;
