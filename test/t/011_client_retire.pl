# Retire entries end to end: the reference client (src/client,
# synclog-follow) folds them as the server's rotation does.
#
# A client follows a document while watermarks are retired: by
# synclog.forget_client (of a watermark held in the state, and of one whose
# entry is in the active log), and by the background worker for clients idle
# longer than synclog.client_retention.  After each step the client syncs
# and verifies (--verify: its running hash equals a rehash of its items and
# the server's state rebuilt from snapshot and entries, item by item); a
# rotation over the retire entries seals a marker whose hash the client
# must already hold (a switch by marker, no download).  Its position must
# survive client_retention as long as it acks, while an idle position goes.
use strict;
use warnings;
use Time::HiRes qw(sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = $ENV{TESTDIR} or die "TESTDIR is not set";
my $bin = "$top/src/client/synclog-follow";
ok(-x $bin, "the client is built ($bin)") or BAIL_OUT("build the client first: make");

my $node = PostgreSQL::Test::Cluster->new('client_retire');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'synclog'
synclog.naptime = 1
synclog.worker_paused = on
synclog.rotate_entries = 0
synclog.rotate_size = 0
synclog.rotate_age = 0
synclog.rotate_min_interval = 0
});
$node->start;
my $dsn = $node->connstr('postgres');
my $work = PostgreSQL::Test::Utils::tempdir('client_retire');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Sync once (acking as "follower"), verify, and return the output.
sub follow
{
	my $out = `'$bin' --dsn '$dsn' --doc rt --dir '$work/c' --client-id follower --once --verify --no-progress 2>&1`;
	my $rc = $? >> 8;
	count_run($out);
	return ($rc, $out);
}

# The replica keeps its counters across runs: what a run did is the
# difference from the run before (follow keeps both).
my %seen = (downloads => 0, switches_marker => 0);
my %did;
sub count_run
{
	my ($out) = @_;
	for my $name (keys %seen)
	{
		my ($n) = $out =~ /^stats: .* \Q$name\E=(\d+)/m;
		$did{$name} = defined $n ? $n - $seen{$name} : undef;
		$seen{$name} = $n if defined $n;
	}
	return;
}
sub downloads { return $did{downloads}; }
sub switches { return $did{switches_marker}; }

sub verified
{
	my ($rc, $out, $what) = @_;
	ok($rc == 0 && $out =~ /^verify: ok$/m && $out =~ /^verify: server equal: /m,
		"$what: the replica verifies against the server (hash and items)")
	  or diag($out);
	return;
}

sql(q{
	CREATE EXTENSION synclog;
	SELECT synclog.create_doc('rt');
	SELECT synclog.append('rt', ARRAY[int4send(i)], ARRAY[convert_to('v' || i, 'UTF8')],
		'w' || (i % 4), i)
	  FROM generate_series(1, 40) i;
	SELECT synclog.compact('rt');
});
is(sql(q{SELECT clients FROM synclog.doc WHERE name = 'rt'}), '4', 'four writers have watermarks');

my ($rc, $out) = follow();
verified($rc, $out, 'initial download');
is(downloads($out), 1, 'one download (the initial one)');

# w1's watermark lives in the state (its entries are sealed); w2 appends
# and is then forgotten within the active log.
sql(q{
	SELECT synclog.forget_client('rt', 'w1');
	SELECT synclog.append('rt', ARRAY['\x01']::bytea[], ARRAY['x']::bytea[], 'w2', 100);
	SELECT synclog.forget_client('rt', 'w2');
	SELECT synclog.append('rt', ARRAY['\x02']::bytea[], ARRAY['y']::bytea[], 'w1', 1);
});
($rc, $out) = follow();
verified($rc, $out, 'retire entries in the active log');
is(downloads($out), 0, 'the client applied the retire entries without a download');

# A rotation seals them: the marker's hash is the server fold's, and the
# client already holds it.
sql(q{SELECT synclog.compact('rt')});
($rc, $out) = follow();
verified($rc, $out, 'after the rotation over the retire entries');
is(switches($out), 1, 'the client switched by marker');
is(downloads($out), 0, 'no download');
like($out, qr/^verify: at the base of the current log \S+ \(lsn \d+\): hash == its snapshot_hash$/m,
	'the client is at the base of the new log, with its hash');
is(sql(q{SELECT string_agg(client_id || ':' || client_seq, ',' ORDER BY client_id)
		   FROM synclog.current_log('rt') c, synclog.snapshot_clients('rt', c.log_id)}),
	'w0:40,w1:1,w3:39', 'the snapshot holds the watermarks of w0, w3 and the new w1');

# The worker retires idle clients.  The writers stop; w3 keeps its
# watermark while a position of the same id acks.  The follower's
# position must survive too, an unused position must not.
my $log = sql(q{SELECT log_id FROM synclog.current_log('rt')});
sql(qq{SELECT synclog.ack('rt', 'stale-reader', '$log', (SELECT base_lsn FROM synclog.current_log('rt')))});
sql(q{SELECT synclog.append('rt', ARRAY['\x03']::bytea[], ARRAY['z']::bytea[])});
sql(q{SELECT synclog.compact('rt')});
sleep(2.5);
sub keep_acking
{
	$log = sql(q{SELECT log_id FROM synclog.current_log('rt')});
	sql(qq{SELECT synclog.ack('rt', 'w3', '$log', (SELECT base_lsn FROM synclog.current_log('rt')))});
	return follow();    # acks as the follower
}
($rc, $out) = keep_acking();
my $head0 = sql(q{SELECT head_lsn FROM synclog.current_log('rt')});
my $offset = -s $node->logfile;
$node->append_conf('postgresql.conf', q{
synclog.client_retention = '2s'
synclog.worker_paused = off
});
$node->reload;
my $deadline = time + 60;
my $done = 0;
while (time < $deadline)
{
	($rc, $out) = keep_acking();
	$done = sql(qq{SELECT count(*) FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
				   WHERE d.name = 'rt' AND e.client_seq = -1 AND e.lsn > $head0}) == 2
	  && sql(q{SELECT count(*) FROM synclog.client_pos WHERE client_id = 'stale-reader'}) == 0;
	last if $done;
	sleep(0.5);
}
ok($done, 'the worker retired w0 and w1 and removed the unused position');
verified($rc, $out, 'after the worker retired clients');
is(sql(q{SELECT string_agg(client_id, ',' ORDER BY client_id) FROM synclog.client_pos}),
	'follower,w3', 'the positions of clients that ack stay');
is(sql(qq{SELECT string_agg(client_id, ',' ORDER BY client_id) FROM synclog.entry
		   WHERE client_seq = -1 AND lsn > $head0}),
	'w0,w1', 'the worker retired w0 and w1; not w3, whose position acks');
is(sql(q{SELECT clients FROM synclog.doc WHERE name = 'rt'}), '1', 'doc.clients counts w3 only');
like(slurp_file($node->logfile, $offset),
	qr/LOG:  retired client "w[01]" of document "rt"\n.*DETAIL:  Its newest entry is older than "synclog.client_retention"/,
	'the worker logs each retirement');

$node->append_conf('postgresql.conf', "synclog.worker_paused = on\n");
$node->reload;
sql(q{SELECT synclog.compact('rt')});
($rc, $out) = follow();
verified($rc, $out, 'after a rotation over the worker\'s retire entries');
is(switches($out), 1, 'the client switched by marker');
is(downloads($out), 0, 'no download');
is(sql(q{SELECT string_agg(client_id, ',' ORDER BY client_id)
		   FROM synclog.current_log('rt') c, synclog.snapshot_clients('rt', c.log_id)}),
	'w3', 'only w3 keeps a watermark');
is(sql(q{SELECT snapshot_hash = synclog.recompute_hash('rt', log_id) FROM synclog.current_log('rt')}),
	't', 'the stored hash equals a recomputation');

$node->stop;
done_testing();
