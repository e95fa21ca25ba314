-- Document patterns of synclog.grant_doc as the access check matches them
-- (access.c): % matches any run of characters (none, one, or several, and
-- several % in a row), the match backtracks past a partial match, \ makes
-- the next character literal, and a pattern must match the whole name.
-- Then more grant rows than the cache's first allocation (16).

CREATE ROLE regress_pat;
SELECT synclog.grant_role('regress_pat', 'reader');
SELECT synclog.create_doc(d) IS NOT NULL AS created
  FROM unnest(ARRAY['p/aXbXc', 'p/abc', 'p/ab', 'p/aXbXd', 'q/%lit', 'q/xlit', 'r/a%%b',
					'r/a--b']) d;
SELECT synclog.grant_doc('regress_pat', 'p/a%b%c');
SELECT synclog.grant_doc('regress_pat', 'q/\%lit');
SELECT synclog.grant_doc('regress_pat', 'r/a%%%b%%');
-- Whether the caller may read the document: its current_log answers
-- (42501 outside the caller's patterns).
CREATE FUNCTION pg_temp.readable(d text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM synclog.current_log(d);
	RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
	RETURN false;
END $$;
SET ROLE regress_pat;
SELECT d, pg_temp.readable(d)
  FROM unnest(ARRAY['p/aXbXc', 'p/abc', 'p/ab', 'p/aXbXd', 'q/%lit', 'q/xlit', 'r/a%%b', 'r/a--b']) d;
RESET ROLE;

-- Twenty grant rows: every one of them counts.
SELECT count(synclog.grant_doc('regress_pat', 's/' || i || '/%')) FROM generate_series(1, 20) i;
SELECT count(synclog.create_doc('s/' || i || '/doc') IS NOT NULL) FROM generate_series(1, 21) i;
SET ROLE regress_pat;
SELECT count(*) FILTER (WHERE pg_temp.readable('s/' || i || '/doc')) AS readable
  FROM generate_series(1, 21) i;
SELECT d, pg_temp.readable(d) FROM unnest(ARRAY['s/1/doc', 's/16/doc', 's/17/doc', 's/20/doc', 's/21/doc']) d;
RESET ROLE;

SELECT count(synclog.drop_doc(name)) FROM synclog.doc WHERE name ~ '^[pqrs]/';
SELECT synclog.revoke_role('regress_pat');
DROP ROLE regress_pat;

-- DROP EXTENSION without CASCADE goes through once there are no documents
-- (drop_guard.c); rolled back here.
BEGIN;
SELECT count(synclog.drop_doc(name)) >= 0 AS dropped FROM synclog.doc;
DROP EXTENSION synclog;
SELECT count(*) AS synclog_left FROM pg_extension WHERE extname = 'synclog';
ROLLBACK;
SELECT count(*) AS synclog_back FROM pg_extension WHERE extname = 'synclog';

-- compact_due under a lock_timeout of the session's: the shorter of it
-- and synclog.rotation_lock_timeout bounds the rotations' lock waits
-- (policy.c); either way a free document is rotated.
SELECT synclog.create_doc('lt') IS NOT NULL AS created;
SET synclog.rotate_entries = 1;
SET synclog.rotate_min_interval = 0;
SELECT synclog.append('lt', ARRAY['\x01'::bytea], ARRAY['\x01'::bytea]);
SET lock_timeout = '1h';
SELECT synclog.compact_due(10) AS rotated;
SHOW lock_timeout;
SELECT synclog.append('lt', ARRAY['\x02'::bytea], ARRAY['\x02'::bytea]);
SET lock_timeout = '1ms';
SELECT synclog.compact_due(10) AS rotated;
SHOW lock_timeout;
RESET lock_timeout;
RESET synclog.rotate_entries;
RESET synclog.rotate_min_interval;
SELECT synclog.drop_doc('lt');
