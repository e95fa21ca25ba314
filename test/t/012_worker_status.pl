# What the background worker reports in synclog.worker_status (worker.c,
# worker_state.c), checked against what it did:
#  - rounds: the state, the last finished round and the round counter move;
#  - rotations, collections, VACUUMs and client retirements count when
#    they succeed, and when they fail (a writer holding a document beyond
#    synclog.rotation_lock_timeout; synclog.kv locked during a collection;
#    a VACUUM made to fail by the test hook synclog.debug_fail_vacuum), with
#    the last error's task, document, SQLSTATE and message;
#  - a role that grant_doc confines sees the last error only for documents
#    it may read;
#  - a locked synclog.worker_state does not stop the rounds, only their
#    report;
#  - the pass over idle clients (synclog.client_retention) runs at most
#    once per tenth of the setting: clients_checked_at stays put between;
#  - synclog.status shows a document due by age (rotate_age) before the
#    worker rotates it, and the oldest retired log's age and bytes.
use strict;
use warnings;
use Time::HiRes qw(sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker_status');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'synclog'
synclog.naptime = 1
synclog.rotate_entries = 3
synclog.rotate_size = 0
synclog.rotate_age = 0
synclog.rotate_min_interval = 0
synclog.rotation_lock_timeout = '300ms'
synclog.retention = 0
synclog.retention_max = 0
synclog.worker_paused = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION synclog');
my $hooks = $node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_settings WHERE name = 'synclog.debug_fail_vacuum'});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub status { return sql("SELECT $_[0] FROM synclog.worker_status"); }

sub set_conf
{
	my ($sql) = @_;
	sql("$sql; SELECT pg_reload_conf()");
	return;
}

sub wait_for
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what)
	  or diag(sql(q{SELECT * FROM synclog.worker_status}));
	return;
}

is(status('state'), 'never run', 'before the first round: never run');

# --- rounds and rotations ----------------------------------------------------
sql(q{
	SELECT synclog.create_doc(d) FROM unnest(ARRAY['a/doc', 'a/held', 'b/secret']) d;
	SELECT synclog.append('a/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
	  FROM generate_series(1, 3);
});
set_conf('ALTER SYSTEM SET synclog.worker_paused = off');
wait_for(q{SELECT rounds >= 2 AND state = 'idle' AND rotations >= 1 FROM synclog.worker_status},
	'rounds are counted and a rotation is counted');
is(status(q{since_last_round < interval '1 minute' AND round_finished_at >= round_started_at
	AND pid IS NOT NULL AND NOT paused}), 't', 'the last round is recent and its times are in order');
is(status('rotations_failed + collections_failed + vacuums_failed + clients_failed'), '0',
	'no failures yet');

# --- a rotation that fails -------------------------------------------------
# A writer appends to a due document and stays idle in its transaction:
# every round's rotation of it fails after the lock timeout.
set_conf('ALTER SYSTEM SET synclog.worker_paused = on');
$node->poll_query_until('postgres', q{SELECT state = 'idle' FROM synclog.worker_status});
sql(q{SELECT synclog.append('a/held', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
	    FROM generate_series(1, 3)});
my $writer = $node->background_psql('postgres');
$writer->query_safe(q{BEGIN; SELECT synclog.append('a/held', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);});
set_conf('ALTER SYSTEM SET synclog.worker_paused = off');
wait_for(q{SELECT rotations_failed >= 2 FROM synclog.worker_status},
	'each round counts the failed rotation of the held document');
is(status(q{last_error_task || ' ' || last_error_doc || ' ' || last_error_sqlstate}),
	'rotate a/held 55P03', 'the last error: task, document, SQLSTATE (lock_not_available)');
like(status('last_error'), qr/lock timeout/, 'the last error: message');
is(status(q{last_error_at > now() - interval '1 minute'}), 't', 'the last error: time');
# Other documents are still rotated, and counted.
my $rot = status('rotations');
sql(q{SELECT synclog.append('a/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
	    FROM generate_series(1, 3)});
wait_for(qq{SELECT rotations > $rot FROM synclog.worker_status},
	'rotations of other documents go on, and count');

# A monitoring role confined to b/% does not see an error about a/held.
sql(q{
	CREATE ROLE mon LOGIN;
	SELECT synclog.grant_role('mon', 'monitor');
	SELECT synclog.grant_doc('mon', 'b/%', 'read');
	CREATE ROLE mon_all LOGIN;
	SELECT synclog.grant_role('mon_all', 'monitor');
});
is($node->safe_psql('postgres',
		q{SELECT coalesce(last_error_doc, '-') || ' ' || coalesce(last_error, '-') || ' ' || last_error_sqlstate || ' ' || (rotations_failed > 0)
		    FROM synclog.worker_status}, extra_params => ['-U', 'mon']),
	'- - 55P03 true', 'a confined monitor sees the counters but not the document or message');
is($node->safe_psql('postgres', q{SELECT last_error_doc FROM synclog.worker_status},
		extra_params => ['-U', 'mon_all']),
	'a/held', 'an unconfined monitor sees the document');
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM synclog.worker_state',
	extra_params => ['-U', 'mon']);
like($err, qr/permission denied/, 'the table behind the view is not readable');

$writer->query_safe('COMMIT');
$writer->quit;
wait_for(q{SELECT generation > 1 FROM synclog.status WHERE doc = 'a/held'},
	'the held document is rotated once its writer commits');

# --- a collection that fails, a VACUUM that fails ----------------------------
# More rotations make retired logs; with retention 0 the worker collects
# them.  synclog.kv locked by another session makes the collection wait
# and fail.
wait_for(q{SELECT collections >= 1 AND vacuums >= 1 FROM synclog.worker_status},
	'collections and the VACUUM after them are counted');
# Two rotations here retire a log that retention (3 s) keeps for a while,
# and nothing is due: the collection is the last task of the round.
set_conf(q{ALTER SYSTEM SET synclog.retention = '3s'});
sql(q{SELECT synclog.append('a/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
	  SELECT synclog.compact('a/doc');
	  SELECT synclog.append('a/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
	  SELECT synclog.compact('a/doc');});
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE synclog.kv IN EXCLUSIVE MODE;');
wait_for(q{SELECT collections_failed >= 1 AND last_error_task = 'collect' FROM synclog.worker_status},
	'a collection that cannot get its lock is counted as failed');
is(status('last_error_sqlstate'), '55P03', 'with its SQLSTATE');
is(status('last_error_doc IS NULL'), 't', 'a collection error names no document');
$locker->query_safe('ROLLBACK');
$locker->quit;
set_conf(q{ALTER SYSTEM RESET synclog.retention});

SKIP:
{
	skip 'synclog.debug_fail_vacuum needs a test build (make SYNCLOG_TEST_HOOKS=1)', 3
	  unless $hooks;
	set_conf('ALTER SYSTEM SET synclog.debug_fail_vacuum = on');
	my $vac = status('vacuums_failed');
	sql(q{SELECT synclog.append('a/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
		    FROM generate_series(1, 4)});
	wait_for(qq{SELECT vacuums_failed > $vac AND last_error_task = 'vacuum' FROM synclog.worker_status},
		'a VACUUM that fails is counted');
	is(status('last_error_sqlstate'), 'P0001', 'with its SQLSTATE');
	set_conf('ALTER SYSTEM RESET synclog.debug_fail_vacuum');
	my $ok = status('vacuums');
	sql(q{SELECT synclog.append('a/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
		    FROM generate_series(1, 4)});
	wait_for(qq{SELECT vacuums > $ok FROM synclog.worker_status}, 'VACUUMs succeed again');
}

# --- a locked state row does not stop the rounds -----------------------------
my $rounds = status('rounds');
my $gen = sql(q{SELECT generation FROM synclog.status WHERE doc = 'a/doc'});
$locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE synclog.worker_state IN ACCESS EXCLUSIVE MODE;');
sql(q{SELECT synclog.append('a/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
	    FROM generate_series(1, 3)});
ok($node->poll_query_until('postgres',
		qq{SELECT generation > $gen FROM synclog.status WHERE doc = 'a/doc'}),
	'with synclog.worker_state locked, the worker still rotates');
$locker->query_safe('ROLLBACK');
$locker->quit;
wait_for(qq{SELECT rounds > $rounds + 1 FROM synclog.worker_status},
	'once the row is free, the rounds are reported again');

# --- idle clients: counted, and checked at most once per tenth ---------------
sql(q{SELECT synclog.append('b/secret', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], 'idle-writer', 1);
	  SELECT synclog.compact('b/secret');});
my $log = sql(q{SELECT log_id FROM synclog.current_log('b/secret')});
sql(qq{SELECT synclog.ack('b/secret', 'idle-reader', '$log', 1)});
sql(q{SELECT synclog.append('b/secret', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);
	  SELECT synclog.compact('b/secret');});
sleep(2.2);
set_conf(q{ALTER SYSTEM SET synclog.client_retention = '2s'});
wait_for(q{SELECT clients_retired >= 1 AND positions_expired >= 1 AND clients_checked_at IS NOT NULL
		   FROM synclog.worker_status},
	'a retired client and an expired position are counted');
is(sql(q{SELECT count(*) FROM synclog.entry WHERE client_id = 'idle-writer' AND client_seq = -1}),
	'1', 'the idle writer was retired');
set_conf(q{ALTER SYSTEM SET synclog.client_retention = '1h'});
$rounds = status('rounds');
wait_for(qq{SELECT rounds >= $rounds + 2 FROM synclog.worker_status}, 'two rounds under the new setting');
my $checked = status('clients_checked_at');
$rounds = status('rounds');
wait_for(qq{SELECT rounds >= $rounds + 3 FROM synclog.worker_status}, 'three more rounds');
is(status('clients_checked_at'), $checked,
	'with client_retention 1h, the pass is not repeated within 6 minutes');
set_conf(q{ALTER SYSTEM RESET synclog.client_retention});

# --- status: due by age, retired logs ---------------------------------------
set_conf(q{ALTER SYSTEM SET synclog.worker_paused = on});
$node->poll_query_until('postgres', q{SELECT state = 'idle' FROM synclog.worker_status});
sql(q{
	SELECT synclog.create_doc('a/aged');
	SELECT synclog.set_policy('a/aged', rotate_entries => 0, rotate_age => interval '3 seconds');
	SELECT synclog.append('a/aged', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
});
is(sql(q{SELECT due FROM synclog.status WHERE doc = 'a/aged'}), 'f',
	'status.due: not yet (one entry, 3 s age threshold)');
ok($node->poll_query_until('postgres', q{SELECT due FROM synclog.status WHERE doc = 'a/aged'}),
	'status.due: due once the first entry is older than rotate_age');
set_conf(q{ALTER SYSTEM SET synclog.worker_paused = off});
wait_for(q{SELECT generation > 1 AND NOT due FROM synclog.status WHERE doc = 'a/aged'},
	'the worker rotates it, and it is no longer due');

set_conf(q{ALTER SYSTEM SET synclog.worker_paused = on});
$node->poll_query_until('postgres', q{SELECT state = 'idle' FROM synclog.worker_status});
sql(q{SELECT synclog.append('a/aged', ARRAY['\x02']::bytea[], ARRAY['\x0203']::bytea[]);
	  SELECT synclog.compact('a/aged');
	  SELECT synclog.append('a/aged', ARRAY['\x03']::bytea[], ARRAY['\x03']::bytea[]);
	  SELECT synclog.compact('a/aged');});
is(sql(q{SELECT retired_logs || ' ' || retired_bytes || ' ' || (oldest_retired_age >= interval '0')
		   || ' ' || (oldest_retired_sealed_at = (SELECT min(sealed_at) FROM synclog.log l
				JOIN synclog.doc d USING (doc_id) WHERE d.name = 'a/aged' AND l.state = 'retired'))
		   FROM synclog.status WHERE doc = 'a/aged'}),
	'2 31 true true',
	'status: two retired logs of 15 and 16 delta bytes, the oldest one\'s sealing time and age');

$node->stop;
done_testing();
