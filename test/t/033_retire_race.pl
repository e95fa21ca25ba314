# The worker retires an idle client (synclog.client_retention, forget.c)
# only on evidence read under the document's lock: a client it listed as
# idle that appends before the worker gets to it is not retired.  The test
# build's synclog.debug_pause_at holds the worker at "retire_between_reads"
# (after it listed the idle clients, before it locks the document) while
# the client appends; a second idle client, listed after it, is retired in
# the same round, which shows the round went on.
#
# Nothing is asserted after a fixed sleep: the worker's wait is seen in
# pg_locks, and "c1 was not retired" is claimed after the retirement of c2
# in that round and two more rounds of the launcher (SynclogWorker.pm).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use SynclogWorker;

my $node = PostgreSQL::Test::Cluster->new('retire_race');
$node->init;
$node->append_conf('postgresql.conf', worker_conf() . q{
synclog.rotate_entries = 0
synclog.rotation_lock_timeout = 0
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

if (!sql(q{CREATE EXTENSION synclog; SELECT count(*) FROM pg_settings WHERE name = 'synclog.debug_pause_at'}))
{
	plan skip_all => 'synclog.debug_pause_at needs a test build (make SYNCLOG_TEST_HOOKS=1)';
}

# c1 and c2 append, a rotation folds their watermarks into the state, and
# once that log is older than client_retention (2 s) both are idle.
sql(q{
	SELECT synclog.create_doc('r');
	SELECT synclog.append('r', ARRAY['\x01'::bytea], ARRAY['\x01'::bytea], 'c1', 1);
	SELECT synclog.append('r', ARRAY['\x02'::bytea], ARRAY['\x02'::bytea], 'c2', 1);
	SELECT synclog.compact('r');
});

# The test holds the lock of the first arrival at the pause point; then
# the worker's passes over idle clients start.
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(21324, 1)');
sql(q{ALTER SYSTEM SET synclog.debug_pause_at = 'retire_between_reads';
	  ALTER SYSTEM SET synclog.client_retention = '2s';
	  SELECT pg_reload_conf();});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		 WHERE l.locktype = 'advisory' AND l.classid = 21324 AND l.objid = 1 AND NOT l.granted
		   AND a.backend_type = 'synclog worker'}),
	'the worker is held before retiring the first idle client');
is(sql(q{SELECT count(*) FROM synclog.entry WHERE client_seq = -1}), '0', 'nobody is retired yet');

# c1 appends meanwhile: it is not idle any more.
sql(q{SELECT synclog.append('r', ARRAY['\x03'::bytea], ARRAY['\x03'::bytea], 'c1', 2)});
$holder->query_safe('SELECT pg_advisory_unlock(21324, 1)');
ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM synclog.entry WHERE client_id = 'c2' AND client_seq = -1}),
	'the worker goes on and retires c2, idle all along');
wait_two_rounds($node);
is(sql(q{SELECT count(*) FROM synclog.entry WHERE client_id = 'c1' AND client_seq = -1}), '0',
	'c1, which appended after the worker listed it, is not retired');
is(sql(q{SELECT clients_retired || ' ' || clients_failed FROM synclog.worker_status}), '1 0',
	'the worker counts one retirement and no failure');
is(sql(q{SELECT string_agg(client_id || ':' || client_seq, ',' ORDER BY lsn) FROM synclog.entry}),
	'c1:1,c2:1,c1:2,c2:-1', 'the log: both appends of c1, then the retire entry of c2');

$holder->quit;
$node->stop('fast');
done_testing();
