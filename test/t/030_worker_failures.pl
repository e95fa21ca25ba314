# The background worker when things fail: no background worker slot for
# the per-database worker (a WARNING each round, nothing visited, work
# resumes once there is a slot); a rotation that fails (the next document
# is still rotated, the failed one once it can be); a collection that
# fails (rotations go on, the log is collected once it can be); a VACUUM
# that fails (canceled here: the worker ends its round normally and the
# next rounds vacuum again).  Each failure is logged with the database it
# happened in, and no worker exits abnormally.
#
# Nothing here is asserted after a fixed sleep: "nothing happened" is
# claimed only after the launcher has finished two more rounds
# (SynclogWorker.pm), and everything else waits for the event itself.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use SynclogWorker;

my $node = PostgreSQL::Test::Cluster->new('failures');
$node->init;
$node->append_conf('postgresql.conf', worker_conf() . q{
max_worker_processes = 1
max_logical_replication_workers = 0
autovacuum = off
});
$node->start;

sub generation
{
	my ($doc) = @_;
	return $node->safe_psql('postgres', "SELECT generation FROM synclog.status WHERE doc = '$doc'");
}

sub append_n
{
	my ($doc, $n) = @_;
	$node->safe_psql('postgres',
		"SELECT count(synclog.append('$doc', ARRAY[int4send(i)], ARRAY[int4send(i * 7)])) FROM generate_series(1, $n) i");
}

sub set_paused
{
	my ($on) = @_;
	$node->safe_psql('postgres',
		$on ? q{ALTER SYSTEM SET synclog.worker_paused = on; SELECT pg_reload_conf();}
		    : q{ALTER SYSTEM RESET synclog.worker_paused; SELECT pg_reload_conf();});
	wait_two_rounds($node);
}

# 1. No slot: max_worker_processes = 1 is the launcher's own.
$node->safe_psql('postgres', q{CREATE EXTENSION synclog; SELECT synclog.create_doc('slot');});
append_n('slot', 5);
my $offset = 0;
$node->wait_for_log(
	qr/WARNING:  could not start a synclog worker for database "postgres"\n[^\n]*DETAIL:  Each round needs one background worker slot besides the launcher's\.\n[^\n]*HINT:  You might need to increase "max_worker_processes"\./,
	$offset);
pass('without a free slot the launcher warns, naming the database and the setting');
wait_two_rounds($node);
like($node->safe_psql('postgres', q{SELECT query FROM pg_stat_activity WHERE backend_type = 'synclog launcher'}),
	qr/databases visited: 0$/, 'the launcher counts no database as visited');
is(generation('slot'), '1', 'nothing is rotated');
$node->append_conf('postgresql.conf', 'max_worker_processes = 4');
$node->restart;
ok($node->poll_query_until('postgres', q{SELECT generation = 2 FROM synclog.status WHERE doc = 'slot'}),
	'with a free slot the due document is rotated');

# 1b. Workers that do not start (a test build's synclog.debug_fail_worker_start:
# the launcher cancels each worker it registers and waits until it is gone,
# so that it never sees it running).  The rounds go on, visiting no
# database, and the work resumes once workers start again.  (Before the
# offset below: a worker canceled just after it was forked exits with 1.)
SKIP:
{
	skip 'synclog.debug_fail_worker_start needs a test build (make SYNCLOG_TEST_HOOKS=1)', 5
	  unless $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_settings WHERE name = 'synclog.debug_fail_worker_start'});
	$node->safe_psql('postgres',
		q{ALTER SYSTEM SET synclog.debug_fail_worker_start = on; SELECT pg_reload_conf();});
	wait_two_rounds($node);
	append_n('slot', 5);
	wait_two_rounds($node);
	like($node->safe_psql('postgres', q{SELECT query FROM pg_stat_activity WHERE backend_type = 'synclog launcher'}),
		qr/databases visited: 0$/, 'while workers do not start, the launcher counts no database as visited');
	is(generation('slot'), '2', 'nothing is rotated while workers do not start');
	$node->safe_psql('postgres',
		q{ALTER SYSTEM RESET synclog.debug_fail_worker_start; SELECT pg_reload_conf();});
	ok($node->poll_query_until('postgres', q{SELECT generation = 3 FROM synclog.status WHERE doc = 'slot'}),
		'once workers start again, the due document is rotated');
}
$offset = -s $node->logfile;
my $started = $offset;

# 2. A rotation fails (a gap in the log): the round goes on with the next
# document, and the failed one is rotated once the gap is repaired.
set_paused(1);
$node->safe_psql('postgres', q{SELECT synclog.create_doc('bad')});
$node->safe_psql('postgres', q{SELECT synclog.create_doc('good')});
append_n('bad', 5);
append_n('good', 5);
$node->safe_psql('postgres', q{
	CREATE TABLE saved AS SELECT e.* FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
	 WHERE d.name = 'bad' AND e.lsn = 3;
	DELETE FROM synclog.entry e USING synclog.doc d WHERE d.doc_id = e.doc_id AND d.name = 'bad' AND e.lsn = 3;});
set_paused(0);
ok($node->poll_query_until('postgres', q{SELECT generation = 2 FROM synclog.status WHERE doc = 'good'}),
	'the document after the failed one is rotated in the same round');
$node->wait_for_log(
	qr/ERROR:  missing log entry\n[^\n]*DETAIL:  [^\n]*\n[^\n]*CONTEXT:  [^\n]*\n?[^\n]*synclog worker for database "postgres"/s,
	$offset);
pass('the failed rotation is logged with its database');
is(generation('bad'), '1', 'the failed rotation left nothing behind');
$node->safe_psql('postgres', q{INSERT INTO synclog.entry SELECT * FROM saved; DROP TABLE saved;});
ok($node->poll_query_until('postgres', q{SELECT generation = 2 FROM synclog.status WHERE doc = 'bad'}),
	'repaired, it is rotated in a later round');
$offset = -s $node->logfile;

# 3. A collection fails (a gap in a retired log): rotations go on, and the
# log is collected once the gap is repaired.  While it is repaired, the
# worker's VACUUM is made slow (a database setting the worker reads when
# it connects), and then canceled: 4. below.
set_paused(1);
$node->safe_psql('postgres', q{SELECT synclog.create_doc('col')});
append_n('col', 5);
$node->safe_psql('postgres', q{SELECT synclog.compact('col')});
append_n('col', 5);
$node->safe_psql('postgres', q{SELECT synclog.compact('col')});
# Some bulk, so that a VACUUM of synclog.entry and synclog.kv has pages to
# work through.
$node->safe_psql('postgres', q{
	SELECT synclog.create_doc('bulk');
	SELECT count(synclog.append('bulk', ARRAY[int4send(i)], ARRAY[decode(repeat('ab', 200), 'hex')])) FROM generate_series(1, 3000) i;
	SELECT synclog.compact('bulk') IS NOT NULL;
	SELECT synclog.set_policy('bulk', auto_rotate => false);
	CREATE TABLE saved AS SELECT e.* FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
	 WHERE d.name = 'col' AND e.lsn = 2;
	DELETE FROM synclog.entry e USING synclog.doc d WHERE d.doc_id = e.doc_id AND d.name = 'col' AND e.lsn = 2;});
is( $node->safe_psql('postgres', q{
		SELECT l.state FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'col' AND l.generation = 1}),
	'retired', 'the broken log is retired');
set_paused(0);
$node->wait_for_log(qr/ERROR:  missing log entry\n[^\n]*DETAIL:  [^\n]*\n[^\n]*CONTEXT:  [^\n]*synclog worker for database "postgres"/s,
	$offset);
pass('the failed collection is logged with its database');
append_n('good', 5);
ok($node->poll_query_until('postgres', q{SELECT generation = 3 FROM synclog.status WHERE doc = 'good'}),
	'the worker goes on rotating');
is( $node->safe_psql('postgres', q{
		SELECT l.state FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'col' AND l.generation = 1}),
	'retired', 'the broken log is still there');

# 4. The VACUUM after the repaired log's collection is slowed down and
# canceled.
my $vacuums = $node->safe_psql('postgres', q{
	SELECT sum(vacuum_count) FROM pg_stat_user_tables WHERE schemaname = 'synclog' AND relname IN ('entry', 'kv')});
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET vacuum_cost_delay = '100ms';
	ALTER DATABASE postgres SET vacuum_cost_limit = 1;});
$offset = -s $node->logfile;
$node->safe_psql('postgres', q{INSERT INTO synclog.entry SELECT * FROM saved; DROP TABLE saved;});
ok( $node->poll_query_until('postgres', q{
		SELECT l.state = 'collected' FROM synclog.log l JOIN synclog.doc d USING (doc_id)
		 WHERE d.name = 'col' AND l.generation = 1}),
	'repaired, the log is collected');
ok( $node->poll_query_until('postgres', q{
		SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		 WHERE backend_type = 'synclog worker' AND query LIKE 'VACUUM%'}),
	'the worker vacuums after collecting, and is canceled while it does');
$node->wait_for_log(
	qr/ERROR:  canceling statement due to user request\n[^\n]*CONTEXT:  [^\n]*(\n\t[^\n]*)*synclog worker for database "postgres"/s,
	$offset);
pass('the failed VACUUM is logged with its database');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres RESET vacuum_cost_delay;
	ALTER DATABASE postgres RESET vacuum_cost_limit;});
append_n('good', 5);
ok($node->poll_query_until('postgres', q{SELECT generation = 4 FROM synclog.status WHERE doc = 'good'}),
	'after the failed VACUUM the next rounds rotate');
ok( $node->poll_query_until('postgres', qq{
		SELECT sum(vacuum_count) > $vacuums FROM pg_stat_user_tables
		 WHERE schemaname = 'synclog' AND relname IN ('entry', 'kv')}),
	'... and vacuum again after the next collection');

# 5. A database paused by synclog.pause() (pause.c): the worker skips it,
# saying why, rotates nothing there, and goes on after synclog.resume().
$offset = -s $node->logfile;
my $gen_good = generation('good');
$node->safe_psql('postgres', q{SELECT synclog.pause('a restore by hand')});
append_n('good', 5);
$node->wait_for_log(
	qr/LOG:  skipping database "postgres": synclog is paused\n[^\n]*DETAIL:  Rotations and collections are paused: paused by synclog\.pause\(\) at [^\n]*: a restore by hand\./,
	$offset);
pass('the worker skips a paused database and says why');
wait_two_rounds($node);
is(generation('good'), $gen_good, 'nothing is rotated in a paused database');
$node->safe_psql('postgres', q{SELECT synclog.resume()});
ok($node->poll_query_until('postgres', qq{SELECT generation > $gen_good FROM synclog.status WHERE doc = 'good'}),
	'after synclog.resume() the worker rotates again');

# Since the restart, no worker ended abnormally and nothing crashed.
my $log = slurp_file($node->logfile, $started);
unlike($log, qr/background worker "synclog (worker|launcher)" \(PID \d+\) (exited with exit code [1-9]|was terminated by signal)/,
	'no synclog process exited abnormally');
unlike($log, qr/terminating any other active server processes/, 'no crash');
$node->stop('fast');
done_testing();
