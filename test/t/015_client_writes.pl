# The reference client's write path (issue 12) against a real server.
#
# Part 1, many writers: N clients (SYNCLOG_WRITE_CLIENTS, default 20) each
# submit 200 mutations spread over 3 documents (one replica directory and
# client id per client and document) with `synclog-follow --submit-text`,
# every line with its client_seq (@SEQ), while the worker rotates the
# documents (rotate_entries 40) and collects old logs (retention 0).  Each
# submitter is killed with -9 at random points (seeded): after a random
# time, or at the debug points "submit-queued" (the mutation is durable in
# the queue, not sent) and "submit-sent" (the server committed it, the
# reply not handled), then started again on the same file, until it exits
# 0.  A trigger records every entry the server commits (the logs
# themselves are collected), so that at the end: every mutation appears
# exactly once, each client's in client_seq order; every queue is empty
# (--pending); every replica verifies against the server (--verify).
#
# Part 2, atomic groups: a writer transaction of four appends to one
# document killed between its entries (its backend terminated), and one
# rolled back, leave nothing in any replica; a committed one reaches every
# follower whole, in one group (one LSN in the change feed for all its
# keys), also a follower that pages with --page-entries 1.  A mutation
# split into parts (--part-bytes) is one group too.
#
# Part 3: a batch (--batch) is one group; the server refusing one of its
# mutations fails that one only.  A damaged replica.db (header overwritten)
# after a kill at submit-sent or submit-queued: the replica is downloaded
# again, the queue (queue.db) is kept, every mutation is in the log once.
use strict;
use warnings;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib "$ENV{TESTDIR}/test/t";
use SynclogClientTest;

my $top = $ENV{TESTDIR} or die "TESTDIR is not set";
my $bin = "$top/src/client/synclog-follow";
ok(-x $bin, "the client is built ($bin)") or BAIL_OUT("build the client first: make");

my $nclients = $ENV{SYNCLOG_WRITE_CLIENTS} // 20;
my $nmut = 200;
my $parallel = 6;
srand($ENV{SYNCLOG_WRITE_SEED} // 12);

my $node = sl_client_node('client_writes',
	'synclog.naptime' => 1, 'synclog.rotate_entries' => 40, 'synclog.rotate_size' => 0,
	'synclog.rotate_age' => 0, 'synclog.rotate_min_interval' => 0, 'synclog.retention' => 0,
	'synclog.retention_max' => 0, 'synclog.client_activity_window' => "'1s'", 'max_connections' => 60, 'wal_level' => 'logical');
my $dsn = $node->connstr('postgres');
my @docs = qw(w0 w1 w2);

$node->safe_psql('postgres', qq{
SELECT synclog.create_doc(d) FROM unnest(ARRAY['w0', 'w1', 'w2', 'g']) d;
CREATE TABLE audit (doc_id bigint, lsn bigint, client_id text, client_seq bigint, delta bytea);
SELECT pg_create_logical_replication_slot('audit', 'test_decoding');});

# Every entry the server commits, from logical decoding (the appends do not
# go through triggers, and gc deletes the logs): into the table audit.
sub drain_audit
{
	$node->safe_psql('postgres', q{
INSERT INTO audit
SELECT m[1]::bigint, m[2]::bigint, nullif(c[1], ''), s[1]::bigint, decode(d[1], 'hex')
  FROM (SELECT regexp_match(data, '^table synclog.entry: INSERT: doc_id\[bigint\]:(\d+) lsn\[bigint\]:(\d+)') m,
			   regexp_match(data, 'client_id\[text\]:(?:''([^'']*)''|null)') c,
			   regexp_match(data, 'client_seq\[bigint\]:(-?\d+)') s,
			   regexp_match(data, 'delta\[bytea\]:''\\\\x([0-9a-f]*)''') d
		  FROM pg_logical_slot_get_changes('audit', NULL, NULL)
		 WHERE data LIKE 'table synclog.entry: INSERT:%') x});
}

my $work = PostgreSQL::Test::Utils::tempdir('client_writes');

# ---------------------------------------------------------------- part 1
# the job of client c on document d: its mutations i with i % 3 == d
my @jobs;
for my $c (0 .. $nclients - 1)
{
	for my $d (0 .. 2)
	{
		my $file = "$work/c$c-d$d.txt";
		my $n = 0;
		open(my $f, '>', $file) or die;
		for (my $i = $d; $i < $nmut; $i += 3)
		{
			my $key = unpack('H*', "c$c-m$i");
			my $val = unpack('H*', sprintf('v%d-%d-%08x', $c, $i, int(rand(2**31))));
			my $shared = unpack('H*', "c$c-last");
			print $f '@' . ($i + 1) . " $key=$val $shared=" . unpack('H*', "$i") . "\n";
			$n++;
		}
		close($f);
		push @jobs, { c => $c, d => $d, doc => $docs[$d], file => $file, n => $n,
			dir => "$work/r-c$c-d$d", id => "writer-$c", runs => 0, kills => 0,
			out => "$work/c$c-d$d.out" };
	}
}

# at most 3 kills per job, of three kinds (seeded)
sub start_job
{
	my ($j) = @_;
	my @args = ('--dsn', $dsn, '--doc', $j->{doc}, '--dir', $j->{dir}, '--client-id', $j->{id},
		'--submit-text', $j->{file}, '--quiet', '--no-progress', '--no-open-check');
	$j->{kill_at} = undef;
	$j->{debug} = undef;
	if ($j->{kills} < 3 && rand() < 0.7)
	{
		my $kind = int(rand(3));
		if ($kind == 0)
		{
			$j->{kill_at} = time + 0.01 + rand(0.08);
		}
		else
		{
			$j->{debug} = $kind == 1 ? 'submit-queued' : 'submit-sent';
			push @args, '--debug-delay', "$j->{debug}:3000";
			$j->{debug_seen} = sl_count_lines($j->{out}, qr/^debug: at \Q$j->{debug}\E/);
		}
	}
	$j->{runs}++;
	$j->{pid} = sl_spawn($j->{out}, $bin, @args);
}

my $t0 = time;
my @todo = @jobs;
my @running;
my %kinds = (time => 0, 'submit-queued' => 0, 'submit-sent' => 0);
my $failed_runs = 0;
while (@todo || @running)
{
	while (@todo && @running < $parallel)
	{
		my $j = shift @todo;
		start_job($j);
		push @running, $j;
	}
	sleep 0.02;
	my @still;
	for my $j (@running)
	{
		my $kill = 0;
		if (defined $j->{kill_at} && time >= $j->{kill_at})
		{
			$kill = 'time';
		}
		elsif (defined $j->{debug}
			&& sl_count_lines($j->{out}, qr/^debug: at \Q$j->{debug}\E/) > $j->{debug_seen})
		{
			$kill = $j->{debug};
		}
		if ($kill)
		{
			sl_stop($j->{pid}, 'KILL');
			$j->{kills}++;
			$kinds{$kill}++;
			push @todo, $j;		# started again later, on the same file
			next;
		}
		my $r = waitpid($j->{pid}, WNOHANG);
		if ($r == $j->{pid})
		{
			my $st = $?;
			if ($st != 0)
			{
				$failed_runs++;
				diag("job c$j->{c} d$j->{d} exited with $st");
				push @todo, $j if $j->{runs} < 12;
			}
			next;
		}
		push @still, $j;
	}
	@running = @still;
	die "part 1 takes too long" if time - $t0 > 600;
}
my $elapsed = time - $t0;
note(sprintf('%d clients x %d mutations: %.1f s, kills: %d by time, %d at submit-queued, %d at submit-sent, %d failed runs',
	$nclients, $nmut, $elapsed, $kinds{time}, $kinds{'submit-queued'}, $kinds{'submit-sent'}, $failed_runs));
ok($kinds{'submit-queued'} > 0 && $kinds{'submit-sent'} > 0 && $kinds{time} > 0,
	'submitters were killed at every kind of point');
is($failed_runs, 0, 'every run that was not killed exited 0');

drain_audit();
# rotated (the active log does not start at 0) and collected (few logs left)
my $rotations = $node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE active_base > 0) || '|' || (SELECT count(*) FROM synclog.log l WHERE l.doc_id = ANY(array_agg(d.doc_id)))"
	  . " FROM synclog.doc d WHERE d.name = ANY(ARRAY['w0','w1','w2'])");
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM audit"), '>=', $nclients * $nmut, 'all entries audited');

# exactly once, in each client's order
my $dup = $node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT doc_id, client_id, client_seq FROM audit WHERE client_id LIKE 'writer-%'
	GROUP BY 1, 2, 3 HAVING count(*) > 1) x});
is($dup, '0', 'no client_seq of any client appears twice in any document');
my $order = $node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT client_seq, lag(client_seq) OVER (PARTITION BY doc_id, client_id ORDER BY lsn) AS prev
	FROM audit WHERE client_id LIKE 'writer-%') x WHERE client_seq <= prev});
is($order, '0', "every client's entries are in client_seq order");
my $bad = 0;
for my $j (@jobs)
{
	my $got = $node->safe_psql('postgres', qq{
SELECT count(*), count(DISTINCT a.client_seq), coalesce(min(a.client_seq), 0), coalesce(max(a.client_seq), 0)
  FROM audit a JOIN synclog.doc d USING (doc_id) WHERE d.name = '$j->{doc}' AND a.client_id = '$j->{id}'});
	my ($n, $nd, $lo, $hi) = split /\|/, $got;
	# the mutations of the file: seqs d+1, d+4, ... (every third)
	my $want_hi = $j->{d} + 1 + 3 * ($j->{n} - 1);
	unless ($n == $j->{n} && $nd == $j->{n} && $lo == $j->{d} + 1 && $hi == $want_hi)
	{
		diag("c$j->{c} $j->{doc}: $got, want $j->{n} entries, seqs " . ($j->{d} + 1) . "..$want_hi");
		$bad++;
	}
	# the values are the file's
	my $keys = $node->safe_psql('postgres', qq{
SELECT count(*) FROM audit a JOIN synclog.doc d USING (doc_id), synclog.decode_delta(a.delta) x
 WHERE d.name = '$j->{doc}' AND a.client_id = '$j->{id}' AND convert_from(x.key, 'UTF8') LIKE 'c$j->{c}-m%'});
	$bad++ unless $keys == $j->{n};
}
is($bad, 0, 'every accepted mutation is in the log exactly once, with its values');

# queues empty, replicas equal to the server
my ($nonempty, $unverified) = (0, 0);
for my $j (@jobs)
{
	my $p = `$bin --doc $j->{doc} --dir $j->{dir} --pending 2>&1`;
	$nonempty++ if $p =~ /^(pending|failed) /m;
}
is($nonempty, 0, 'every queue is empty and nothing failed');
for my $j (grep { $_->{c} % 4 == 0 } @jobs)
{
	my $out = `$bin --dsn '$dsn' --doc $j->{doc} --dir $j->{dir} --client-id $j->{id} --once --verify --quiet --no-progress 2>&1`;
	if ($? != 0 || $out !~ /^verify: ok/m)
	{
		$unverified++;
		diag("c$j->{c} $j->{doc}: $out");
	}
}
is($unverified, 0, 'the replicas verify against the server (every fourth client)');
# the rebased view's last value per client is the server's: the shared key
my $last_ok = 0;
for my $j (grep { $_->{d} == 0 } @jobs)
{
	my $exp = `$bin --doc w0 --dir $j->{dir} --export - 2>&1`;
	my $k = unpack('H*', "c$j->{c}-last");
	$last_ok++ if $exp =~ /^D\t$k\t([0-9a-f]+)$/m && pack('H*', $1) eq (3 * ($j->{n} - 1)) . '';
}
is($last_ok, $nclients, "each client's last write of a shared key is the one in the replica");
my ($rotated, $logs) = split /\|/, $rotations;
is($rotated, 3, 'the three documents were rotated while clients wrote');
cmp_ok($logs, '<', 3 + $nclients * $nmut / 40, "old logs were collected ($logs logs left)");

# ---------------------------------------------------------------- part 2
my %fol;
my %fout;
for my $name ('plain', 'page1')
{
	$fout{$name} = "$work/g-$name.out";
	$fol{$name} = sl_follow($fout{$name}, $bin, $dsn, 'g', "$work/g-$name", "g-$name", '--changes',
		$name eq 'page1' ? ('--page-entries', '1') : ());
}
ok(sl_wait_lines($fout{$_}, qr/^download-done:/, 1, 60), "follower $_ has a state") for sort keys %fol;

# a transaction killed between its entries
my $killed_out = "$work/killed.out";
my $kpid = sl_spawn($killed_out, 'psql', '-X', '-d', $dsn, '-v', 'ON_ERROR_STOP=1', '-c',
	"BEGIN; SELECT synclog.append('g', ARRAY['\\x6b31'::bytea], ARRAY['\\x6b'::bytea]);"
	  . " SELECT synclog.append('g', ARRAY['\\x6b32'::bytea], ARRAY['\\x6b'::bytea]);"
	  . " SELECT pg_sleep(60); SELECT synclog.append('g', ARRAY['\\x6b33'::bytea], ARRAY['\\x6b'::bytea]); COMMIT;");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid() AND wait_event = 'PgSleep'"),
	'the killed writer is between its entries');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()");
sl_wait($kpid);
# one rolled back
$node->safe_psql('postgres', q{
BEGIN;
SELECT synclog.append('g', ARRAY['\x7231'::bytea], ARRAY['\x72'::bytea]);
SELECT synclog.append('g', ARRAY['\x7232'::bytea], ARRAY['\x72'::bytea]);
ROLLBACK;});
# one committed: four entries, one group
$node->safe_psql('postgres', q{
BEGIN;
SELECT synclog.append('g', ARRAY['\x6331'::bytea], ARRAY['\x63'::bytea]);
SELECT synclog.append('g', ARRAY['\x6332'::bytea], ARRAY['\x63'::bytea]);
SELECT synclog.append('g', ARRAY['\x6333'::bytea], ARRAY['\x63'::bytea]);
SELECT synclog.append('g', ARRAY['\x6334'::bytea], ARRAY['\x63'::bytea]);
COMMIT;});
drain_audit();
my $head = $node->safe_psql('postgres', "SELECT max(lsn) FROM audit a JOIN synclog.doc d USING (doc_id) WHERE d.name = 'g'");
for my $name (sort keys %fol)
{
	ok(sl_wait_lines($fout{$name}, qr/^change: log=\S+ lsn=$head set 6334$/, 1, 60), "$name: the committed group arrived");
	my @lsns = map { /lsn=(\d+) set 633[1-4]$/ ? $1 : () } split /\n/, slurp_file($fout{$name});
	is(scalar(@lsns), 4, "$name: the group's four keys");
	is(scalar(grep { $_ == $head } @lsns), 4, "$name: all at the group's end (applied as one group)");
	is(sl_count_lines($fout{$name}, qr/ (6b3[123]|723[12])$/), 0, "$name: nothing of the killed or rolled-back transactions");
	sl_stop($fol{$name}, 'TERM');
	my $exp = `$bin --doc g --dir $work/g-$name --export - 2>&1`;
	is(scalar(() = $exp =~ /^D\t(6b3|723)/mg), 0, "$name: the replica holds none of their keys");
	my $v = `$bin --dsn '$dsn' --doc g --dir $work/g-$name --client-id g-$name --once --verify --quiet --no-progress 2>&1`;
	like($v, qr/^verify: ok/m, "$name: the replica verifies");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM audit a JOIN synclog.doc d USING (doc_id) WHERE d.name = 'g'"),
	'4', 'the server has the committed transaction only');

# a mutation split into parts is one group, confirmed whole
my $sfile = "$work/split.txt";
open(my $sf, '>', $sfile) or die;
print $sf '@1 ' . join(' ', map { unpack('H*', "s$_") . '=' . ('ab' x 30) } 1 .. 6) . "\n";
close($sf);
my $sout = `$bin --dsn '$dsn' --doc g --dir $work/g-split --client-id splitter --submit-text $sfile --part-bytes 100 --no-progress --verify 2>&1`;
is($?, 0, 'the split mutation was submitted and confirmed');
like($sout, qr/^queued: queued seq=1 \(3 parts/m, 'split into 3 parts (seqs 1 to 3)');
like($sout, qr/^confirmed: confirmed 1 mutation\(s\) up to seq=3/m, 'confirmed by the watermark of its last part');
my $grp = $node->safe_psql('postgres', q{
SELECT count(*), count(DISTINCT e.group_lsn) FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
 WHERE d.name = 'g' AND e.client_id = 'splitter'});
is($grp, '3|1', 'its three parts are one group on the server');

# ---------------------------------------------------------------- part 3
# a batch (--batch: slcl_submit_batch) goes to the server in one
# transaction; one mutation of it that the server refuses (over a 1 kB
# synclog.max_delta_size set for the client's sessions, not split: the
# client's --part-bytes is larger) goes to the failed list alone, the others
# are appended once each
my $bdsn = "$dsn options='-c synclog.max_delta_size=1'";
my $bfile = "$work/batch.txt";
open(my $bf, '>', $bfile) or die;
for my $i (1 .. 5)
{
	print $bf unpack('H*', "b$i") . '=' . unpack('H*', $i == 3 ? 'x' x 2000 : "v$i") . "\n";
}
close($bf);
my $bout = `$bin --dsn "$bdsn" --doc g --dir $work/g-batch --client-id batcher --submit-text $bfile --batch 5 --part-bytes 100000 --no-progress 2>&1`;
is($? >> 8, 5, 'a batch with a refused mutation exits 5');
like($bout, qr/^refused: mutation seq=3 refused \(54000\)/m, 'the refused one is seq 3, 54000');
is(scalar(() = $bout =~ /^refused:/mg), 1, 'only it is refused');
like(`$bin --doc g --dir $work/g-batch --pending 2>&1`, qr/^failed seq=3 last_seq=3 sqlstate=54000/m,
	'it is in the failed list');
open($bf, '>', $bfile) or die;
print $bf unpack('H*', "b$_") . '=' . unpack('H*', "w$_") . "\n" for 6 .. 10;
close($bf);
$bout = `$bin --dsn '$dsn' --doc g --dir $work/g-batch --client-id batcher --submit-text $bfile --batch 5 --no-progress --verify 2>&1`;
is($?, 0, 'a batch of five is submitted and confirmed');
like($bout, qr/^confirmed: confirmed 5 mutation\(s\) up to seq=10/m, 'confirmed by one watermark');
drain_audit();
is($node->safe_psql('postgres', q{SELECT string_agg(client_seq::text, ',' ORDER BY lsn), count(DISTINCT client_seq)
 FROM audit WHERE client_id = 'batcher'}), '1,2,4,5,6,7,8,9,10|9', 'the others are in the log once each, in order');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT e.group_lsn) FROM synclog.entry e JOIN synclog.doc d USING (doc_id)
 WHERE d.name = 'g' AND e.client_id = 'batcher' AND e.client_seq >= 6}), '1', 'the batch of five is one group');

# a damaged replica.db is removed and downloaded again; the queue is in
# queue.db and keeps the pending mutations: killed after the server
# committed seq 1 (submit-sent) or before it was sent (submit-queued),
# replica.db's header overwritten, a plain sync sends what the server does
# not have: seq 1 once in the log (it is nowhere else but in queue.db)
for my $point ('submit-sent', 'submit-queued')
{
	my $cid = "crash-$point";
	my $cdir = "$work/g-$cid";
	my $cfile = "$work/$cid.txt";
	open(my $cf, '>', $cfile) or die;
	print $cf '@' . $_ . ' ' . unpack('H*', "$cid-$_") . '=' . unpack('H*', "v$_") . "\n" for 1 .. 3;
	close($cf);
	my $cout = "$work/$cid.out";
	my $pid = sl_spawn($cout, $bin, '--dsn', $dsn, '--doc', 'g', '--dir', $cdir, '--client-id', $cid,
		'--submit-text', $cfile, '--no-progress', '--debug-delay', "$point:30000");
	ok(sl_wait_lines($cout, qr/^debug: at \Q$point\E/, 1, 60), "$point: stopped at the point");
	sl_stop($pid, 'KILL');
	like(`$bin --doc g --dir $cdir --pending 2>&1`, qr/^pending seq=1 /m, "$point: seq 1 is pending");
	open(my $db, '+<', "$cdir/replica.db") or die "replica.db: $!";
	binmode($db);
	print $db 'this is no SQLite header at all';
	close($db);
	# a plain sync (nothing to submit): the download, then the queue
	my $out = `$bin --dsn '$dsn' --doc g --dir $cdir --client-id $cid --once --no-progress --verify 2>&1`;
	is($?, 0, "$point: synced again, it exits 0") or diag($out);
	like($out, qr/replica database damaged/, "$point: the damaged replica.db was found");
	like($out, qr/^verify: ok/m, "$point: the new replica verifies");
	unlike(`$bin --doc g --dir $cdir --pending 2>&1`, qr/^(pending|failed) /m, "$point: the queue is empty");
	drain_audit();
	is($node->safe_psql('postgres', qq{SELECT string_agg(client_seq::text, ',' ORDER BY lsn) FROM audit WHERE client_id = '$cid'}),
		'1', "$point: seq 1 is in the log once");
	$out = `$bin --dsn '$dsn' --doc g --dir $cdir --client-id $cid --submit-text $cfile --no-progress 2>&1`;
	is($?, 0, "$point: the file again: \@1 is skipped, 2 and 3 go") or diag($out);
	drain_audit();
	is($node->safe_psql('postgres', qq{SELECT string_agg(client_seq::text, ',' ORDER BY lsn) FROM audit WHERE client_id = '$cid'}),
		'1,2,3', "$point: seqs 1, 2, 3 in the log once each");
}

$node->stop;
done_testing();
