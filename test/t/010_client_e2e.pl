# End to end: the reference client (src/client, synclog-follow) against a
# server whose background worker rotates and collects all the time.
#
# A writer appends to 5 documents; 50 client processes follow them (10 per
# document) into local replicas.  Meanwhile some clients are paused through
# their log's collection (they must repair by range), one client's
# replica gets a flipped bit in a stored value and another one's state is
# silently altered (both must repair by range: the first at open, the
# second at the next marker), and some are killed with SIGKILL at chosen
# points of a switch-over, a page, and a download (mid-way, and between its
# install and the deletion of the old state: these two may only download,
# --paths download), or at random, and restarted.
# At the end every replica must equal the server's state at the base of
# the current log (hash, and every item via --verify), the clients nobody
# disturbed must never have downloaded or repaired after their first fetch
# (a catch-up or a download, chosen by sync_cost), and a switch by marker
# must have moved a marker row and no snapshot bytes.  The paths every
# client took (replay, catch_up, range_repair, download) and their bytes
# are reported.
#
# Also runs the offline durability unit test of the client's files
# (test/client: kills at every step, WAL cuts, damaged files).
#
# The random choices (the writer's workload, the moments of the random
# kills) come from one seed, printed at the start; SYNCLOG_TEST_SEED=N
# replays them.  The writer runs until the worker has made enough
# rotations, however long that takes, not for a fixed time.
use strict;
use warnings;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use SynclogWorker;

my $t_start = time;
my $seed = $ENV{SYNCLOG_TEST_SEED} // int(rand(2**31));
srand($seed);
diag("random seed $seed (replay with SYNCLOG_TEST_SEED=$seed)");
my $top = $ENV{TESTDIR} or die "TESTDIR is not set";
my $bin = "$top/src/client/synclog-follow";
ok(-x $bin, "the client is built ($bin)") or BAIL_OUT("build the client first: make");

# --- the offline durability test of the local files -----------------------
{
	my $out = `make -s -C '$top/test/client' check 2>&1`;
	my $rc = $?;
	note($out);
	is($rc, 0, 'client durability unit test (kills at every step, WAL cuts, damaged files, resumable download, readers)')
	  or diag($out);
}

# --- the server -----------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('client_e2e');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'synclog'
restart_after_crash = on
max_connections = 150
synclog.naptime = 1
synclog.rotate_entries = 15
synclog.rotate_size = 0
synclog.rotate_age = 0
synclog.rotate_min_interval = 0
synclog.retention = 0
synclog.retention_max = 0
synclog.client_activity_window = '6s'
});
$node->start;
my $dsn = $node->connstr('postgres');

# safe_psql that waits out a server restart (see the crash warning below).
sub query
{
	my ($sql) = @_;
	my $deadline = time + 60;
	while (1)
	{
		my ($ret, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1);
		return $out if $ret == 0;
		die "query failed: $sql\n$err"
		  if time > $deadline
		  || $err !~ /recovery mode|starting up|shutting down|terminating connection|server closed|could not connect|no connection/;
		sleep 0.2;
	}
}
my $ndocs = 5;
my @docs = map { "doc$_" } 1 .. $ndocs;

$node->safe_psql('postgres', 'CREATE EXTENSION synclog');
for my $d (@docs)
{
	$node->safe_psql('postgres', qq{
		SELECT synclog.create_doc('$d');
		SELECT synclog.append('$d', ARRAY[int4send(i)], ARRAY[convert_to(repeat(md5(i::text), 2), 'UTF8')])
		  FROM generate_series(1, 200) i;
		SELECT synclog.compact('$d');});
}

# --- the clients ----------------------------------------------------------
my $work = PostgreSQL::Test::Utils::tempdir('client_e2e');
my $nclients = 50;
my (%pid, %role, %doc_of);
my @common = ('--dsn', $dsn, '--poll', '1000', '--min-interval', '200',
	'--ack-interval', '1000', '--no-progress');

sub dir_of { return "$work/c$_[0]"; }
sub out_of { return "$work/c$_[0].out"; }

sub start_client
{
	my ($i, @extra) = @_;
	my $child = fork();
	die "fork: $!" unless defined $child;
	if ($child == 0)
	{
		open(STDOUT, '>>', out_of($i)) or die;
		open(STDERR, '>&', \*STDOUT) or die;
		exec($bin, @common, '--doc', $doc_of{$i}, '--dir', dir_of($i),
			'--client-id', "c$i", @extra) or die "exec: $!";
	}
	$pid{$i} = $child;
	return;
}

sub reap
{
	my ($i, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	while (time < $deadline)
	{
		my $r = waitpid($pid{$i}, WNOHANG);
		if ($r == $pid{$i}) { my $st = $?; delete $pid{$i}; return $st; }
		sleep 0.05;
	}
	die "client c$i did not exit";
}

sub stop_client
{
	my ($i) = @_;
	kill 'TERM', $pid{$i};
	return reap($i);
}

sub kill9_client
{
	my ($i) = @_;
	kill 'KILL', $pid{$i};
	return reap($i);
}

sub slurp_out { return -e out_of($_[0]) ? slurp_file(out_of($_[0])) : ''; }

sub count_lines
{
	my ($i, $re) = @_;
	return scalar(grep { /$re/ } split /\n/, slurp_out($i));
}

sub wait_output
{
	my ($i, $re, $count, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	while (time < $deadline)
	{
		return 1 if count_lines($i, $re) >= $count;
		sleep 0.1;
	}
	return 0;
}

END
{
	# never leave a client behind (only the ones this test started)
	kill 'KILL', values %pid if %pid;
}

for my $i (1 .. $nclients)
{
	$doc_of{$i} = $docs[($i - 1) % $ndocs];
	$role{$i} = 'plain';
}
# who gets disturbed, and how (a few per document)
$role{2} = 'paused';
$role{13} = 'paused';
$role{4} = 'flipped';
$role{5} = 'tampered';
$role{6} = 'killed';     # at switch-verified
$role{7} = 'killed';     # at switch-logged
$role{8} = 'killed';     # at download-installed, then at page-committed
$role{9} = 'killed';     # at page-applied
$role{10} = 'killed';    # mid-download, starts late
$role{11} = 'killed';    # at random
$role{12} = 'killed';    # at random

my %first_args = (
	6 => [ '--debug-delay', 'switch-verified:10000' ],
	7 => [ '--debug-delay', 'switch-logged:10000' ],
	8 => [ '--paths', 'download', '--debug-delay', 'download-installed:10000' ],
	9 => [ '--debug-delay', 'page-applied:10000' ],);
for my $i (1 .. $nclients)
{
	next if $i == 10;
	start_client($i, @{ $first_args{$i} // [] });
}
for my $i (1 .. $nclients)
{
	next if $i == 10;
	ok(wait_output($i, qr/^(download-done: .* hash=ok|staged: catch_up swapped)/, 1, 60),
		"c$i: initial fetch (download or catch-up) done")
	  or diag(slurp_out($i));
}

# c8 was held at the end of its initial download (new state installed, not
# acknowledged): kill it there; it must open without downloading again.
ok(wait_output(8, qr/^debug: at download-installed/, 1, 10), 'c8 reached download-installed');
kill9_client(8);
start_client(8, '--paths', 'download', '--debug-delay', 'page-committed:10000');

# --- the writer -----------------------------------------------------------
my $script = "$work/writer.sql";
open(my $fh, '>', $script) or die;
print $fh q{\set d random(1, 5)
\set k random(1, 300)
\set del random(0, 9)
\set v random(1, 1000000000)
SELECT synclog.append('doc' || :d, ARRAY[int4send(:k), int4send(:k + 1000)], ARRAY[CASE WHEN :del = 0 THEN NULL ELSE convert_to(md5(:v::text), 'UTF8') END, int8send(:k)], 'writer' || :d, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
};
close($fh);
# The writer runs until the file $writer_stop exists (at most 10 minutes).
my $writer_stop = "$work/writer.stop";
my $writer_log = "$work/writer.log";
# pgbench in a loop: should the server restart under it, a new run takes
# over.  Each run's workload follows from the test's seed and the run's
# number.
my $writer = fork();
die "fork: $!" unless defined $writer;
if ($writer == 0)
{
	$ENV{PGOPTIONS} = '-c synclog.notify_append=on';
	open(STDOUT, '>>', $writer_log) or die;
	open(STDERR, '>&', \*STDOUT) or die;
	my $deadline = time + 600;
	for (my $run = 0; !-e $writer_stop && time < $deadline; $run++)
	{
		system('pgbench', '-n', '-f', $script, '-c', '1', '-R', '60', '-T', '2',
			'--random-seed', $seed + $run, '-h', $node->host, '-p', $node->port, 'postgres');
		sleep 0.5 if $? != 0;
	}
	POSIX::_exit(0);
}


# --- disturbances -----------------------------------------------------------
# Kills at chosen points: wait for the client to say it is there, SIGKILL it,
# restart it plainly (c8 first once more with a debug point after a page).
my %killed_at;
{
	# client => [ point, occurrence to wait for ]
	my %pending = (6 => [ 'switch-verified', 1 ], 7 => [ 'switch-logged', 1 ],
		8 => [ 'page-committed', 1 ], 9 => [ 'page-applied', 1 ]);
	my $deadline = time + 60;
	while (%pending && time < $deadline)
	{
		for my $i (sort keys %pending)
		{
			my ($point, $n) = @{ $pending{$i} };
			next if count_lines($i, qr/^debug: at $point/) < $n;
			kill9_client($i);
			$killed_at{$i} = $point;
			start_client($i, $i == 8 ? ('--paths', 'download') : ());
			delete $pending{$i};
		}
		sleep 0.05;
	}
	for my $i (6, 7, 8, 9)
	{
		ok($killed_at{$i}, "c$i was killed at its hook ("
			  . ($killed_at{$i} // "never reached") . ") and restarted");
	}
}

# A late client, killed in the middle of its download (small pages).
start_client(10, '--paths', 'download', '--snapshot-rows', '10', '--debug-delay', 'download-page:10000');
ok(wait_output(10, qr/^debug: at download-page/, 1, 20), 'c10 is held after a download page');
kill9_client(10);
$killed_at{10} = 'download-page';
start_client(10, '--paths', 'download', '--snapshot-rows', '10');

# Pause c2 and c13 until their log (and the one after it) is collected.
my %paused_log;
for my $i (2, 13)
{
	kill 'STOP', $pid{$i};
	$paused_log{$i} = query(qq{
		SELECT c.log_id FROM synclog.client_pos c JOIN synclog.doc d USING (doc_id)
		 WHERE d.name = '$doc_of{$i}' AND c.client_id = 'c$i'});
}
# The replica of c4 gets a flipped bit in a stored value while it is
# stopped (as a bad disk would; no hash follows).
stop_client(4);
{
	my $out = `'$bin' --doc doc4 --dir '@{[dir_of(4)]}' --debug-damage 2>&1`;
	is($?, 0, 'c4 damaged') or diag($out);
	open(my $of, '>>', out_of(4)) or die;
	print $of $out;
	close($of);
}
start_client(4);
# The state of c5 is altered consistently (files and running hash agree).
stop_client(5);
{
	my $out = `'$bin' --doc doc5 --dir '@{[dir_of(5)]}' --debug-tamper 2>&1`;
	is($?, 0, 'c5 tampered') or diag($out);
	open(my $of, '>>', out_of(5)) or die;
	print $of $out;
	close($of);
}
start_client(5);

# Random kills: twice each, half a second apart from anything.
for my $round (1 .. 2)
{
	for my $i (11, 12)
	{
		sleep 0.5 + rand(1.5);
		kill9_client($i);
		start_client($i);
	}
}

for my $i (2, 13)
{
	my $doc = $doc_of{$i};
	ok( $node->poll_query_until('postgres', qq{
			SELECT bool_and(state = 'collected') FROM synclog.log l JOIN synclog.doc d USING (doc_id)
			 WHERE d.name = '$doc'
			   AND l.generation <= (SELECT generation + 1 FROM synclog.log WHERE log_id = '$paused_log{$i}')}),
		"c$i: its log and the next one were collected while it was stopped");
	kill 'CONT', $pid{$i};
}

# --- let the writer finish, then converge ---------------------------------
# Enough rotations under the clients, however long they take.
ok($node->poll_query_until('postgres', 'SELECT rotations >= 5 * 5 FROM synclog.stats_total'),
	'the worker rotated at least 5 times per document while the clients followed');
open(my $stop_fh, '>', $writer_stop) or die "$writer_stop: $!";
close($stop_fh);
waitpid($writer, 0);
my $w_out = slurp_file($writer_log);
note("writer: $w_out");
like($w_out, qr/number of transactions actually processed: \d+/, 'the writer ran');
# The clients would ride out a server restart, but a crash is a server bug.
my $crashes = () = slurp_file($node->logfile) =~ /terminated by signal/g;
is($crashes, 0, 'the server did not crash during the run');

# Stop the worker (nothing may be collected under the clients from now on),
# rotate each document one last time so that its current log starts at its
# head, and wait for every client to get there.
query(q{ALTER SYSTEM SET synclog.worker_paused = on; SELECT pg_reload_conf();});
wait_two_rounds($node);
query(q{SELECT synclog.compact(doc) FROM synclog.status WHERE active_entries > 0});
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = $nclients FROM synclog.client_pos c JOIN synclog.doc_head d USING (doc_id)
		 WHERE c.log_id = d.active_log AND c.lsn = d.head_lsn}),
	'every client reached the base of its document\'s current log');
for my $i (sort { $a <=> $b } keys %pid)
{
	my $st = stop_client($i);
	is($st, 0, "c$i exits cleanly on SIGTERM");
}

# --- every replica equals the server ---------------------------------------
my %server_hash;
for my $d (@docs)
{
	my ($log, $base, $head, $hash) = split /\|/, query(qq{SELECT log_id, base_lsn, head_lsn, encode(snapshot_hash, 'hex') FROM synclog.current_log('$d')});
	is($base, $head, "$d: the current log starts at the head");
	$server_hash{$d} = $hash;
}
my $diverged = 0;
for my $i (1 .. $nclients)
{
	my $out = `'$bin' @{[ join ' ', map { "'$_'" } @common ]} --doc $doc_of{$i} --dir '@{[dir_of($i)]}' --client-id c$i --once --verify --quiet 2>&1`;
	my $rc = $? >> 8;
	my ($hash) = $out =~ /^stats: .* hash=([0-9a-f]+)$/m;
	my $ok = $rc == 0 && $out =~ /^verify: ok$/m
	  && $out =~ /^verify: at the base of the current log \S+ \(lsn \d+\): hash == its snapshot_hash$/m
	  && $out =~ /^verify: server equal: /m
	  && defined $hash && $hash eq $server_hash{ $doc_of{$i} };
	$diverged++ unless $ok;
	ok($ok, "c$i ($role{$i}, $doc_of{$i}): replica equals the server state (hash and items)") or diag($out);
}
is($diverged, 0, 'no client diverged');

# --- what happened, per client --------------------------------------------
my %tot = (switches => 0, marker_bytes => 0, dl => 0, dl_bytes => 0,
	dl_initial => 0, dl_initial_bytes => 0, fallback => 0, fallback_bytes => 0, repairs => 0);
my %by_reason;
my (%path_n, %path_bytes);
my $max_marker_row = 0;
for my $i (1 .. $nclients)
{
	my $log = slurp_out($i);
	my @sw = $log =~ /^switch: .* marker_bytes=(\d+) snapshot_bytes=(\d+)$/mg;
	my ($n_sw, $bad_sw) = (0, 0);
	while (my ($mb, $sb) = splice(@sw, 0, 2))
	{
		$n_sw++;
		$tot{marker_bytes} += $mb;
		$max_marker_row = $mb if $mb > $max_marker_row;
		$bad_sw++ if $sb != 0 || $mb > 200;
	}
	$tot{switches} += $n_sw;
	is($bad_sw, 0, "c$i: every switch by marker moved one marker row and no snapshot bytes");

	my @starts = $log =~ /^download-start: .* reason=(\S+)/mg;
	my @done = $log =~ /^download-done: .* bytes=(\d+) reason=(\S+) hash=ok/mg;
	my @paths = $log =~ /^path: path=(\S+) reason=(\S+)/mg;
	my (%reasons, $fallback, @initial);
	$reasons{$_}++ for @starts;
	$fallback = grep { $_ ne 'initial' } @starts;
	while (my ($p, $r) = splice(@paths, 0, 2))
	{
		$path_n{$p}++;
		push @initial, $p if $r eq 'initial';
		next unless $p eq 'range_repair';
		$reasons{$r}++;
		$fallback++;
		$tot{repairs}++;
	}
	# the bytes per path, from the last stats line (the replica's life)
	my @st = grep { /^stats: / } split /\n/, $log;
	if (@st)
	{
		my %s = $st[-1] =~ /(\w+)=(\S+)/g;
		$path_bytes{replay} += $s{bytes_log} // 0;
		$path_bytes{catch_up} += $s{catch_up_bytes} // 0;
		$path_bytes{range_repair} += $s{range_repair_bytes} // 0;
		$path_bytes{download} += $s{bytes_snapshot} // 0;
	}
	while (my ($b, $r) = splice(@done, 0, 2))
	{
		$tot{dl}++;
		$tot{dl_bytes} += $b;
		$by_reason{$r}{n}++;
		$by_reason{$r}{bytes} += $b;
		if ($r eq 'initial') { $tot{dl_initial}++; $tot{dl_initial_bytes} += $b; }
		else { $tot{fallback}++; $tot{fallback_bytes} += $b; }
	}
	if ($role{$i} eq 'plain')
	{
		is($fallback, 0, "c$i (undisturbed): no download or repair after the initial fetch");
		is(scalar(@initial), 1, "c$i (undisturbed): exactly one initial fetch (@initial)");
		cmp_ok($n_sw, '>=', 3, "c$i (undisturbed): followed the rotations by marker ($n_sw switches)");
	}
	elsif ($role{$i} eq 'paused')
	{
		ok($reasons{collected}, "c$i (paused): its log was collected, it repaired (SL003)");
	}
	elsif ($role{$i} eq 'flipped')
	{
		like($log, qr/^corrupt: state damaged/m, "c$i (flipped byte): damage detected on open");
		ok($reasons{'local-corrupt'}, "c$i (flipped byte): recovered by a repair");
	}
	elsif ($role{$i} eq 'tampered')
	{
		like($log, qr/^marker: .* hash=MISMATCH/m, "c$i (tampered): the next marker did not match");
		ok($reasons{mismatch}, "c$i (tampered): recovered by a repair");
	}
	elsif ($role{$i} eq 'killed' && $i == 10)
	{
		like($log, qr/^download-resume: .* resuming after \d+ keys/m, "c$i (killed mid-download): resumed the download");
		is($fallback, 0, "c$i (killed mid-download): no other download");
	}
	elsif ($role{$i} eq 'killed')
	{
		my $resumed = () = $log =~ /^open: resumed at /mg;
		my $how = $killed_at{$i} ? "killed at $killed_at{$i}" : 'killed at random';
		cmp_ok($resumed, '>=', 1, "c$i ($how): reopened its replica");
		is($fallback, 0, "c$i ($how): resumed without a download or repair");
	}
}

my $srv = query('SELECT rotations, logs_collected, marker_switches, downloads, cut_off FROM synclog.stats_total');
my ($s_rot, $s_coll, $s_sw, $s_dl, $s_cut) = split /\|/, $srv;
my $per_switch = $tot{switches} ? $tot{marker_bytes} / $tot{switches} : 0;
diag(sprintf("switches by marker: %d, moving %d bytes of marker rows (%.0f bytes each, at most %d) and 0 snapshot bytes",
		$tot{switches}, $tot{marker_bytes}, $per_switch, $max_marker_row));
diag(sprintf("downloads: %d, moving %d bytes of snapshot keys and values: %d initial (%d bytes), %d fallback (%d bytes)",
		$tot{dl}, $tot{dl_bytes}, $tot{dl_initial}, $tot{dl_initial_bytes}, $tot{fallback}, $tot{fallback_bytes}));
diag("fallback downloads by reason: "
	  . join(', ', map { "$_ $by_reason{$_}{n} ($by_reason{$_}{bytes} bytes)" } grep { $_ ne 'initial' } sort keys %by_reason));
diag("paths chosen (path: lines): "
	  . join(', ', map { "$_ " . ($path_n{$_} // 0) } qw(replay catch_up range_repair download))
	  . "; bytes moved by path over the replicas' lives: "
	  . join(', ', map { "$_ " . ($path_bytes{$_} // 0) } qw(replay catch_up range_repair download)));
diag("server counters: $s_rot rotations, $s_coll logs collected, $s_sw marker switches, $s_dl downloads, $s_cut clients cut off");
cmp_ok($tot{switches}, '>', 0, 'switch-overs by marker happened');
cmp_ok($tot{fallback} + $tot{repairs}, '>=', 4, 'repairs happened (paused, flipped, tampered: range repairs or downloads)');
cmp_ok($path_n{range_repair} // 0, '>=', 4, 'the repairs were range repairs');
ok($per_switch > 0 && $max_marker_row <= 200, 'a switch by marker moves one marker row (no snapshot)');
cmp_ok($s_sw, '>', 0, 'the server counted marker switches from the acks');
diag(sprintf("client e2e run: %.0f s", time - $t_start));

# Keep what every client printed next to the server log, for whoever
# has to read a failure.
{
	my $keep = "$PostgreSQL::Test::Utils::log_path/client_e2e";
	mkdir $keep;
	for my $i (1 .. $nclients)
	{
		PostgreSQL::Test::Utils::append_to_file("$keep/c$i.out", slurp_out($i));
	}
	PostgreSQL::Test::Utils::append_to_file("$keep/writer.log", slurp_file($writer_log));
}

$node->stop('fast');
done_testing();
