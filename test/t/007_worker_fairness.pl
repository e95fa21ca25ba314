# The background worker is fair: in database "held" one writer keeps an
# open transaction that appended to a due document (so it holds the
# document's row), and another document has a rotate_age so large that
# now() - rotate_age is out of range.  Meanwhile other documents go due in
# "held" and in a second database "free".  The worker must rotate all of
# them in its next rounds (it skips the held one after
# synclog.rotation_lock_timeout), and, once the writer commits, the held
# one too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('fairness');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'synclog'
synclog.naptime = 1
synclog.rotate_entries = 3
synclog.rotate_size = 0
synclog.rotate_age = 0
synclog.rotate_min_interval = 0
synclog.rotation_lock_timeout = '500ms'
synclog.worker_paused = on
});
$node->start;
for my $db ('held', 'free')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION synclog');
}

sub gen
{
	my ($db, $doc) = @_;
	return $node->safe_psql($db, "SELECT generation FROM synclog.status WHERE doc = '$doc'");
}

$node->safe_psql('held', q{
	SELECT synclog.create_doc(d) FROM unnest(ARRAY['held/doc', 'held/age', 'held/other']) d;
	SELECT synclog.set_policy('held/age', rotate_entries => 0, rotate_bytes => 0,
		rotate_age => interval '10000 years');
	SELECT synclog.append('held/age', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[]);
	SELECT synclog.append('held/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
	  FROM generate_series(1, 3);
});

# held/doc is due; a writer appends to it and stays idle in its
# transaction, holding the document's row.
my $writer = $node->background_psql('held');
$writer->query_safe(q{BEGIN; SELECT synclog.append('held/doc', ARRAY['\x02']::bytea[], ARRAY['\x02']::bytea[]);});


# Other documents go due in both databases.
$node->safe_psql('held', q{
	SELECT synclog.append('held/other', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
	  FROM generate_series(1, 4);
});
$node->safe_psql('free', q{
	SELECT synclog.create_doc('free/doc');
	SELECT synclog.append('free/doc', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])
	  FROM generate_series(1, 4);
});

$node->safe_psql('postgres', q{ALTER SYSTEM SET synclog.worker_paused = off; SELECT pg_reload_conf();});
ok($node->poll_query_until('held', q{SELECT generation > 1 FROM synclog.status WHERE doc = 'held/other'}),
	'a due document next to a held one and a bad policy is rotated');
ok($node->poll_query_until('free', q{SELECT generation > 1 FROM synclog.status WHERE doc = 'free/doc'}),
	'a due document in another database is rotated');
ok($node->wait_for_log(qr/canceling statement due to lock timeout|could not obtain lock/),
	'the worker gave up on the held document after the lock timeout');
is(gen('held', 'held/doc'), '1', 'the held document was not rotated while held');
is($node->safe_psql('held', q{SELECT count(*) FROM synclog.status}), '3',
	'the status view reads the document with the huge rotate_age');

$writer->query_safe('COMMIT');
ok($node->poll_query_until('held', q{SELECT generation > 1 FROM synclog.status WHERE doc = 'held/doc'}),
	'the held document is rotated once its writer commits');
$writer->quit;

# The server log has no round that failed as a whole.
my $log = slurp_file($node->logfile);
unlike($log, qr/timestamp out of range/, 'no round failed on the huge rotate_age');

$node->stop;
done_testing();
