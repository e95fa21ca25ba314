-- Rotation policy (what makes a document due), per-document overrides,
-- synclog.compact_due, client acknowledgements, retention that follows
-- clients, and the counters.

SET synclog.rotate_entries = 3;
SET synclog.rotate_size = 0;
SET synclog.rotate_age = 0;
SET synclog.rotate_min_interval = 0;

SELECT synclog.create_doc('pol-a') IS NOT NULL, synclog.create_doc('pol-b') IS NOT NULL,
	   synclog.create_doc('pol-c') IS NOT NULL;
SELECT synclog.append(d, ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
  FROM (VALUES ('pol-a'), ('pol-a'), ('pol-b')) t(d);
-- Nothing is due yet.
SELECT doc, active_entries, due, first_append_at IS NOT NULL AS has_entries FROM synclog.status
 WHERE doc LIKE 'pol-%' ORDER BY doc;
SELECT synclog.compact_due(10);
-- The append that reaches the threshold flags the document.
SELECT synclog.append('pol-a', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);
SELECT doc, active_entries, due FROM synclog.status WHERE doc LIKE 'pol-%' ORDER BY doc;
SELECT synclog.compact_due(10);
SELECT doc, generation, active_entries, due, first_append_at IS NULL AS reset FROM synclog.status
 WHERE doc LIKE 'pol-%' ORDER BY doc;

-- Byte threshold.
SET synclog.rotate_size = '1kB';
SELECT synclog.append('pol-b', ARRAY['\x03']::bytea[], ARRAY[decode(repeat('00', 1100), 'hex')]);
SELECT doc, due FROM synclog.status WHERE doc = 'pol-b';

-- Age threshold: the first entry since the last rotation is old enough.
SET synclog.rotate_entries = 0;
SELECT synclog.append('pol-c', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
SET synclog.rotate_age = '1h';
SELECT synclog.compact_due(10);
UPDATE synclog.doc SET first_append_at = now() - interval '2 hours' WHERE name = 'pol-c';
-- max_docs caps a round: pol-b (due by size) and pol-c (due by age).
SELECT synclog.compact_due(1);
SELECT synclog.compact_due(10);
SELECT doc, generation FROM synclog.status WHERE doc LIKE 'pol-%' ORDER BY doc;
SET synclog.rotate_size = 0;

-- Minimum interval between rotations of the same document.
SET synclog.rotate_age = 0;
SET synclog.rotate_entries = 1;
SET synclog.rotate_min_interval = '1h';
SELECT synclog.append('pol-a', ARRAY['\x01']::bytea[], ARRAY['\x09']::bytea[]);
SELECT synclog.compact_due(10);
SET synclog.rotate_min_interval = 0;
SELECT synclog.compact_due(10);

-- Overrides: a hot document rotated sooner, an archive never.
SET synclog.rotate_entries = 100;
SELECT synclog.set_policy('pol-a', rotate_entries => 2);
SELECT synclog.set_policy('pol-b', auto_rotate => false);
SELECT synclog.append(d, ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[])
  FROM (VALUES ('pol-a'), ('pol-a'), ('pol-b'), ('pol-b'), ('pol-b')) t(d);
SELECT doc, active_entries, due, auto_rotate, rotate_entries, rotate_bytes, rotate_age
  FROM synclog.status WHERE doc LIKE 'pol-%' ORDER BY doc;
SELECT synclog.compact_due(10);
-- Lowering an override flags the document at once.
SELECT synclog.set_policy('pol-c', rotate_entries => 1, rotate_age => '5 minutes');
SELECT synclog.append('pol-c', ARRAY['\x05']::bytea[], ARRAY['\x05']::bytea[]);
SELECT doc, due, rotate_age FROM synclog.status WHERE doc = 'pol-c';
SELECT synclog.clear_policy('pol-b');
SELECT synclog.set_policy('pol-b', rotate_entries => 0, rotate_bytes => 0);
SELECT doc, due, auto_rotate, rotate_entries FROM synclog.status WHERE doc = 'pol-b';
-- Raising a threshold un-flags documents that are no longer due.
SELECT synclog.clear_policy('pol-b');
SET synclog.rotate_entries = 3;
SELECT synclog.append('pol-b', ARRAY['\x06']::bytea[], ARRAY['\x06']::bytea[]);
SELECT doc, active_entries, due FROM synclog.status WHERE doc = 'pol-b';
SET synclog.rotate_entries = 1000;
SELECT synclog.compact_due(10);
-- pol-c, due under its own override, rotated; pol-b is no longer due.
SELECT doc, generation, due FROM synclog.status WHERE doc LIKE 'pol-%' ORDER BY doc;

-- Bad input.
SELECT synclog.compact_due(0);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.compact_due(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.set_policy('nope', rotate_entries => 5);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.set_policy('pol-a', rotate_entries => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.set_policy('pol-a', rotate_bytes => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.set_policy('pol-a', rotate_age => '-1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.set_policy('pol-a', auto_rotate => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.clear_policy(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT synclog.clear_policy('nope');
\echo :LAST_ERROR_SQLSTATE

SELECT synclog.drop_doc(d) FROM (VALUES ('pol-a'), ('pol-b'), ('pol-c')) t(d);
RESET synclog.rotate_entries;
RESET synclog.rotate_size;
RESET synclog.rotate_age;
RESET synclog.rotate_min_interval;
