# The background worker: it rotates and collects by itself under the
# thresholds, follows a SIGHUP, pauses, works in every database that has
# the extension, does not block DROP DATABASE, and a crash in the middle of
# one of its rotations leaves every document whole.  Nothing is asserted
# after a fixed sleep: "the worker did nothing" is claimed once the
# launcher has finished two more rounds (SynclogWorker.pm).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use FindBin;
use lib $FindBin::Bin;
use SynclogWorker;

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf('postgresql.conf', worker_conf() . "restart_after_crash = on\n");
$node->start;
# The rotation hook (synclog.debug_rotation_delay) exists only in test builds.
is($node->safe_psql('postgres', q{LOAD 'synclog'; SELECT count(*) FROM pg_settings WHERE name = 'synclog.debug_rotation_delay'}),
	'1', 'synclog is a test build')
  or BAIL_OUT('this test needs a test build: make SYNCLOG_TEST_HOOKS=1 install');

sub generation
{
	my ($db, $doc) = @_;
	return $node->safe_psql($db,
		"SELECT generation FROM synclog.status WHERE doc = '$doc'");
}

sub append_n
{
	my ($db, $doc, $n) = @_;
	$node->safe_psql($db,
		"SELECT synclog.append('$doc', ARRAY[int4send(i)], ARRAY[int4send(i * 7)]) FROM generate_series(1, $n) i");
}

# Every document of a database is whole: its chain is contiguous, every
# retained snapshot hash matches a recomputation, and the current state is
# the fold of every entry still stored on top of the oldest retained snapshot.
sub check_consistent
{
	my ($db, $label) = @_;
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM synclog.log a JOIN synclog.log b
			    ON b.doc_id = a.doc_id AND b.generation = a.generation + 1
			 WHERE a.end_lsn <> b.base_lsn OR a.next_log_id <> b.log_id
			    OR a.end_hash <> b.snapshot_hash OR a.state = 'active'}),
		'0', "$label: chains are contiguous");
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id)
			 WHERE l.state <> 'collected'
			   AND l.snapshot_hash <> synclog.recompute_hash(d.name, l.log_id)}),
		'0', "$label: every snapshot hash matches a recomputation");
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM synclog.doc_head d
			 WHERE (SELECT count(*) FROM synclog.log l WHERE l.doc_id = d.doc_id AND l.state = 'active') <> 1
			    OR (SELECT count(*) FROM synclog.entry e WHERE e.doc_id = d.doc_id AND e.lsn > d.active_base)
			       <> d.head_lsn - d.active_base
			    OR (SELECT coalesce(sum(octet_length(e.delta)), 0) FROM synclog.entry e
			         WHERE e.doc_id = d.doc_id AND e.lsn > d.active_base) <> d.active_bytes}),
		'0', "$label: one active log per document, no lost entry, its byte count right");
}

$node->safe_psql('postgres', q{CREATE EXTENSION synclog; SELECT synclog.create_doc('w1');});
$node->safe_psql('postgres', q{CREATE DATABASE app2});
$node->safe_psql('app2', q{CREATE EXTENSION synclog; SELECT synclog.create_doc('w2');});

ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'synclog launcher'}),
	'the launcher shows in pg_stat_activity');

# Rotation by itself, in both databases.
append_n('postgres', 'w1', 4);
append_n('app2', 'w2', 6);
ok($node->poll_query_until('app2', q{SELECT generation = 2 FROM synclog.status WHERE doc = 'w2'}),
	'the worker rotates a document over the entry threshold');
wait_two_rounds($node);
is(generation('postgres', 'w1'), '1', 'a document under the threshold is left alone');
append_n('postgres', 'w1', 1);
ok($node->poll_query_until('postgres', q{SELECT generation = 2 FROM synclog.status WHERE doc = 'w1'}),
	'... and rotated once it crosses it, in the other database too');
ok( $node->log_contains(
		qr/LOG:  rotated document "w2"\n[^\n]*DETAIL:  Sealed log [0-9a-f]{32} at LSN 6 after 6 entries \(\d+ bytes\)\. New log: [0-9a-f]{32}\. Snapshot items: 6 \(\d+ bytes\)\. Time: [0-9.]+ ms\./
	),
	'rotations are logged with the document and the log sizes');
ok( $node->log_contains(
		qr/LOG:  rotated document "w2"\n[^\n]*DETAIL:  [^\n]*\n[^\n]*CONTEXT:  synclog worker for database "app2"/),
	'the log line says which database');

# Collection by itself: two more generations make the first log retired.
append_n('postgres', 'w1', 5);
ok($node->poll_query_until('postgres', q{SELECT generation = 3 FROM synclog.status WHERE doc = 'w1'}),
	'third generation');
ok( $node->poll_query_until('postgres',
		q{SELECT state = 'collected' FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'w1' AND l.generation = 1}),
	'the worker collects a log two generations back');
ok($node->log_contains(qr/collected log [0-9a-f]{32} of document "w1"/), 'collections are logged');

# After a round that collected, the worker vacuums synclog.entry and
# synclog.kv (synclog.vacuum_after_gc, on by default); autovacuum would
# count in autovacuum_count, not here.
sub vacuum_counts
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(relname || ':' || vacuum_count, ' ' ORDER BY relname)
		  FROM pg_stat_user_tables WHERE schemaname = 'synclog' AND relname IN ('entry', 'kv')});
}
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 2 FROM pg_stat_user_tables
		 WHERE schemaname = 'synclog' AND relname IN ('entry', 'kv') AND vacuum_count > 0}),
	'after collecting, the worker vacuums synclog.entry and synclog.kv');

# With synclog.vacuum_after_gc off, collections go on and nothing is vacuumed.
$node->safe_psql('postgres', q{ALTER SYSTEM SET synclog.vacuum_after_gc = off; SELECT pg_reload_conf();});
wait_two_rounds($node);
my $counts_off = vacuum_counts();
$node->safe_psql('postgres', q{SELECT synclog.create_doc('v1')});
for my $gen (2 .. 4)
{
	append_n('postgres', 'v1', 5);
	ok($node->poll_query_until('postgres', "SELECT generation = $gen FROM synclog.status WHERE doc = 'v1'"),
		"v1: generation $gen");
}
ok( $node->poll_query_until('postgres',
		q{SELECT state = 'collected' FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'v1' AND l.generation = 2}),
	'v1: its first two logs are collected');
wait_two_rounds($node);
is(vacuum_counts(), $counts_off, 'with synclog.vacuum_after_gc off the worker does not vacuum');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET synclog.vacuum_after_gc; SELECT pg_reload_conf();});
wait_two_rounds($node);
append_n('postgres', 'v1', 5);
ok($node->poll_query_until('postgres', "SELECT vacuum_counts <> '$counts_off' FROM (SELECT string_agg(relname || ':' || vacuum_count, ' ' ORDER BY relname) AS vacuum_counts FROM pg_stat_user_tables WHERE schemaname = 'synclog' AND relname IN ('entry', 'kv')) v"),
	'switched back on, it vacuums after the next collection');

# A client that acked in a retired log holds it (retention follows clients).
$node->safe_psql('postgres', q{
	SELECT synclog.ack('w1', 'slow-client', (SELECT l.log_id FROM synclog.log l JOIN synclog.doc d USING (doc_id)
	                                        WHERE d.name = 'w1' AND l.generation = 3), 10)});
for my $gen (4 .. 6)
{
	append_n('postgres', 'w1', 5);
	ok($node->poll_query_until('postgres', "SELECT generation = $gen FROM synclog.status WHERE doc = 'w1'"),
		"generation $gen");
}
wait_two_rounds($node);
is( $node->safe_psql('postgres', q{
		SELECT string_agg(l.generation || ':' || l.state, ' ' ORDER BY l.generation)
		  FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'w1'}),
	'2:collected 3:retired 4:retired 5:previous 6:active',
	'a log an active client sits in is kept, and so are the ones after it; of the collected rows only the newest is left');

# SIGHUP: a new threshold applies without a restart.
$node->safe_psql('postgres', q{ALTER SYSTEM SET synclog.rotate_entries = 2; SELECT pg_reload_conf();});
wait_two_rounds($node);
append_n('postgres', 'w1', 2);
ok($node->poll_query_until('postgres', q{SELECT generation = 7 FROM synclog.status WHERE doc = 'w1'}),
	'after a reload the worker follows the new threshold');

# Pause and resume.
$node->safe_psql('postgres', q{ALTER SYSTEM SET synclog.worker_paused = on; SELECT pg_reload_conf();});
wait_two_rounds($node);
append_n('postgres', 'w1', 3);
wait_two_rounds($node);
is(generation('postgres', 'w1'), '7', 'a paused worker rotates nothing');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET synclog.worker_paused; SELECT pg_reload_conf();});
ok($node->poll_query_until('postgres', q{SELECT generation = 8 FROM synclog.status WHERE doc = 'w1'}),
	'resumed, it catches up');

# Per-document override: never rotate an archive.
$node->safe_psql('postgres', q{SELECT synclog.create_doc('archive'); SELECT synclog.set_policy('archive', auto_rotate => false);});
append_n('postgres', 'archive', 10);
wait_two_rounds($node);
is(generation('postgres', 'archive'), '1', 'a document exempted by its policy is never rotated');

# CREATE EXTENSION in a new database: the worker starts working there.
$node->safe_psql('postgres', q{CREATE DATABASE app3});
$node->safe_psql('app3', q{CREATE EXTENSION synclog; SELECT synclog.create_doc('w3');});
append_n('app3', 'w3', 3);
ok($node->poll_query_until('app3', q{SELECT generation = 2 FROM synclog.status WHERE doc = 'w3'}),
	'a database where the extension was just created gets served');

# DROP EXTENSION: the worker leaves that database alone, without errors.
$node->safe_psql('app3', q{DROP EXTENSION synclog CASCADE});
my $log_offset = -s $node->logfile;
wait_two_rounds($node);
my $log_tail = slurp_file($node->logfile, $log_offset);
unlike($log_tail, qr/ERROR|FATAL/, 'no errors after DROP EXTENSION');

# DROP DATABASE while the worker keeps visiting it.
for my $i (1 .. 5)
{
	$node->safe_psql('app2', 'SELECT 1');
	my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE app3');
	if ($ret == 0) { pass('DROP DATABASE succeeds while the worker is active'); last; }
	fail("DROP DATABASE failed: $err") if $i == 5;
}
ok( $node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'app3'}) eq '0',
	'the database is gone');
append_n('app2', 'w2', 2);
ok($node->poll_query_until('app2', q{SELECT generation = 3 FROM synclog.status WHERE doc = 'w2'}),
	'the worker goes on in the other databases');

check_consistent('postgres', 'before the crashes');

# kill -9 of the worker in the middle of a rotation (held there by the test
# hook): crash recovery leaves the document not rotated, and the worker
# rotates it after the restart.
$node->safe_psql('postgres', q{ALTER SYSTEM SET synclog.debug_rotation_delay = '30s'; SELECT pg_reload_conf();});
my $gen_before = generation('postgres', 'w1');
append_n('postgres', 'w1', 3);
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'synclog worker' AND query LIKE '%rotating document w1%'}),
	'the worker is held inside a rotation');
my $wpid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'synclog worker'});
kill 'KILL', $wpid;
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server recovers from the killed worker');
is(generation('postgres', 'w1'), $gen_before, 'the interrupted rotation left nothing behind');
check_consistent('postgres', 'after kill -9 of the worker');

# kill -9 of the postmaster in the middle of a rotation.
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'synclog worker' AND query LIKE '%rotating document w1%'}),
	'the worker is held inside a rotation again');
my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
$node->kill9;
# Start again once the killed postmaster is gone, and once its children,
# which notice its death, have let go of the shared memory (until then a
# new postmaster refuses to start).
my $restart_deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (kill(0, $postmaster) && time < $restart_deadline)
{
	sleep 0.1;
}
until ($node->start(fail_ok => 1))
{
	BAIL_OUT('the server did not start again after kill -9') if time > $restart_deadline;
	sleep 0.2;
}
is(generation('postgres', 'w1'), $gen_before, 'after a postmaster crash the rotation is not half done');
check_consistent('postgres', 'after kill -9 of the postmaster');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET synclog.debug_rotation_delay; SELECT pg_reload_conf();});
ok( $node->poll_query_until('postgres',
		"SELECT generation = $gen_before + 1 FROM synclog.status WHERE doc = 'w1'"),
	'the worker resumes and completes the rotation after the restart');
check_consistent('postgres', 'after the resumed rotation');

# pg_terminate_backend on the launcher, the safe way to stop it (README,
# "Failure drills" 1): the postmaster starts a new one after
# bgw_restart_time (10 s), and the new one rotates again.
my $old_launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'synclog launcher'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_launcher)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'synclog launcher' AND pid <> $old_launcher"),
	'a terminated launcher is started again by the postmaster');
my $gen_terminated = generation('postgres', 'w1');
append_n('postgres', 'w1', 6);
ok( $node->poll_query_until('postgres',
		"SELECT generation > $gen_terminated FROM synclog.status WHERE doc = 'w1'"),
	'the restarted launcher rotates again');
check_consistent('postgres', 'after the launcher was terminated');

# SIGTERM: on a fast shutdown the launcher ends on the signal itself (not
# at the end of a round or a nap), and the shutdown completes.
$log_offset = -s $node->logfile;
$node->stop('fast');
ok( $node->log_contains(
		qr/FATAL:  terminating background worker "synclog launcher" due to administrator command/,
		$log_offset),
	'a fast shutdown terminates the launcher');
done_testing();
