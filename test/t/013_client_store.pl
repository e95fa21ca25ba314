# The reference client's replica as an application's store: reading it
# from other processes while a follower writes, the export format, and the
# change feed.
#
# A writer appends to one document (pgbench, with the LSN of every append
# recorded in a table) while the document is rotated now and then; one
# synclog-follow follows it with --changes.  Meanwhile a reader runs
# `synclog-follow --export` again and again on the same directory (no
# lock: it must never be refused), and each snapshot it exports must be
# consistent: its items recompute (in SQL, with synclog.state_hash) to the
# hash in its header, and that hash equals the server's state at the
# exported position (rebuilt in SQL from the log's snapshot and entries).
# The follower is then paused until its log is collected, so that it
# downloads while the reader goes on: the old state stays readable until
# the new one is installed.  At the end the export equals the server's
# snapshot row for row, and every append since the follower's download is
# in the change feed at its LSN, in LSN order.
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

my $node = sl_client_node('client_store',
	'synclog.naptime' => 1, 'synclog.rotate_entries' => 0, 'synclog.rotate_size' => 0,
	'synclog.rotate_age' => 0, 'synclog.retention' => 0, 'synclog.retention_max' => 0,
	'synclog.client_activity_window' => "'2s'");
my $dsn = $node->connstr('postgres');
my $doc = 'store';

$node->safe_psql('postgres', qq{
SELECT synclog.create_doc('$doc');
SELECT synclog.append('$doc', ARRAY[int4send(i)], ARRAY[convert_to(repeat(md5(i::text), 3), 'UTF8')], 'seed', i)
  FROM generate_series(1, 300) i;
SELECT synclog.compact('$doc');
CREATE TABLE wlog (lsn bigint, k int);
-- The hash of the server's state at (log, lsn): the log's snapshot, then
-- its entries up to lsn, the newest value of each key and watermark.
CREATE FUNCTION state_at(d text, l text, upto bigint) RETURNS bytea LANGUAGE sql AS \$\$
WITH ent AS (
	SELECT r.lsn, r.client_id, r.client_seq, r.delta
	  FROM synclog.snapshot_info(d, l) i, synclog.read(d, l, i.base_lsn, 100000000, 2000000000) r
	 WHERE r.kind = 'delta' AND r.lsn <= upto),
chg AS (SELECT DISTINCT ON (x.key) x.key, x.value FROM ent, synclog.decode_delta(ent.delta) x
		 ORDER BY x.key, ent.lsn DESC),
data AS (SELECT s.key, s.value FROM synclog.snapshot(d, l, NULL, 1000000000) s
		  WHERE NOT EXISTS (SELECT 1 FROM chg WHERE chg.key = s.key)
		 UNION ALL SELECT key, value FROM chg),
wm AS (SELECT DISTINCT ON (client_id) client_id, client_seq, lsn FROM ent WHERE client_id IS NOT NULL
		ORDER BY client_id, lsn DESC),
cl AS (SELECT c.client_id, c.client_seq, c.client_lsn FROM synclog.snapshot_clients(d, l) c
		WHERE NOT EXISTS (SELECT 1 FROM wm WHERE wm.client_id = c.client_id)
	   UNION ALL SELECT client_id, client_seq, lsn FROM wm)
SELECT synclog.hash_combine((SELECT synclog.state_hash(key, value) FROM data),
							(SELECT synclog.state_hash(client_id, client_seq, client_lsn) FROM cl))
\$\$;});

my $work = PostgreSQL::Test::Utils::tempdir('client_store');
my $dir = "$work/replica";
my $fout = "$work/follow.out";
my %pid;

sub start_follower
{
	# downloads only (no catch-up, no range repair): this test is about
	# reading the replica while a download replaces it
	$pid{follower} = sl_follow($fout, $bin, $dsn, $doc, $dir, 'f1', '--changes', '--snapshot-rows', '7',
		'--paths', 'download');
}

sub wait_for { return sl_wait_lines($fout, $_[0], 1, $_[1]); }

start_follower();
ok(wait_for(qr/^download-done: .* hash=ok/m), 'the follower downloaded the document');

# --- the writer -------------------------------------------------------------
my $script = "$work/writer.sql";
open(my $fh, '>', $script) or die;
print $fh qq{\\set k random(1, 400)
INSERT INTO wlog SELECT synclog.append('$doc', ARRAY[int4send(:k)], ARRAY[convert_to(md5(random()::text), 'UTF8')], 'writer', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint), :k;
};
close($fh);
my $writer = sl_spawn("$work/writer.log", 'pgbench', '-n', '-f', $script, '-c', '1', '-R', '80',
	'-T', '14', '-h', $node->host, '-p', $node->port, 'postgres');
$pid{writer} = $writer;

# --- the reader ---------------------------------------------------------------
sub parse_export
{
	my ($file) = @_;
	my $text = slurp_file($file);
	my @lines = split /\n/, $text;
	my %e = (data => [], clients => [], text => $text);
	my $head = shift @lines // '';
	@e{qw(doc log lsn chain hash)} = $head =~
	  /^# synclog-export 1 doc=([0-9a-f]+) log=(\S+) lsn=(\d+) chain=([0-9a-f]{32}) hash=([0-9a-f]{66})$/;
	my $tail = pop @lines // '';
	@e{qw(n_items n_clients)} = $tail =~ /^# end items=(\d+) clients=(\d+)$/;
	for (@lines)
	{
		if (/^D\t([0-9a-f]*)\t([0-9a-f]*)$/) { push @{ $e{data} }, [ $1, $2 ]; }
		elsif (/^C\t([0-9a-f]+)\t(-?\d+)\t(\d+)$/) { push @{ $e{clients} }, [ $1, $2, $3 ]; }
		else { $e{bad} = $_; }
	}
	return \%e;
}

# The hash of an export's items, recomputed by the server.
sub export_hash
{
	my ($e) = @_;
	my $data = join(',', map { "('\\x$_->[0]'::bytea, '\\x$_->[1]'::bytea)" } @{ $e->{data} })
	  || "(NULL::bytea, NULL::bytea)";
	my $cl = join(',', map { "(convert_from('\\x$_->[0]'::bytea, 'UTF8'), $_->[1]::bigint, $_->[2]::bigint)" }
		  @{ $e->{clients} });
	my $clq = $cl ? "SELECT synclog.state_hash(c, s, l) FROM (VALUES $cl) t(c, s, l)" : "SELECT synclog.empty_hash()";
	return $node->safe_psql('postgres', qq{
		SELECT encode(synclog.hash_combine(
			(SELECT synclog.state_hash(k, v) FROM (VALUES $data) t(k, v) WHERE k IS NOT NULL),
			($clq)), 'hex')});
}

my ($exports, $consistent, $server_checked, $server_equal, $refused) = (0, 0, 0, 0, 0);
my %positions;
my $reader_rounds = sub {
	my ($seconds, $also) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		my $f = "$work/export.$exports";
		my $out = `'$bin' --doc $doc --dir '$dir' --export '$f' 2>&1`;
		$exports++;
		if ($? != 0)
		{
			$refused++;
			diag("export refused: $out");
			next;
		}
		my $e = parse_export($f);
		my $ok = defined $e->{hash} && defined $e->{n_items} && !$e->{bad}
		  && $e->{n_items} == @{ $e->{data} } && $e->{n_clients} == @{ $e->{clients} };
		$ok &&= export_hash($e) eq $e->{hash};
		$consistent++ if $ok;
		diag("inconsistent export:\n" . substr($e->{text}, 0, 2000)) unless $ok;
		$positions{"$e->{log}:$e->{lsn}"} = 1 if defined $e->{log};
		# the server's state at that position, while its log is kept
		my ($ret, $srv) = $node->psql('postgres', "SELECT encode(state_at('$doc', '$e->{log}', $e->{lsn}), 'hex')");
		if ($ret == 0 && $srv ne '')
		{
			$server_checked++;
			$server_equal++ if $srv eq $e->{hash};
			diag("export at $e->{log}:$e->{lsn}: hash $e->{hash}, server $srv") if $srv ne $e->{hash};
		}
		$also->() if $also;
		unlink $f;
	}
};

# while the writer runs: rotate now and then
{
	my $last_rot = time;
	$reader_rounds->(12, sub {
		if (time - $last_rot > 3)
		{
			$node->safe_psql('postgres', "SELECT synclog.compact('$doc')");
			$last_rot = time;
		}
	});
}
sl_wait(delete $pid{writer});
like(slurp_file("$work/writer.log"), qr/number of transactions actually processed: \d+/, 'the writer ran');
cmp_ok($exports, '>=', 10, "the reader exported $exports snapshots while the follower ran");
is($refused, 0, 'no export was refused (readers take no lock)');
is($consistent, $exports, 'every snapshot recomputes to its own hash');
cmp_ok(scalar(keys %positions), '>=', 3, scalar(keys %positions) . ' different positions were read');
cmp_ok($server_checked, '>=', 5, "$server_checked snapshots compared with the server's state at their position");
is($server_equal, $server_checked, "each equals the server's state at its position");
like(slurp_file($fout), qr/^switch: /m, 'the follower switched logs by marker meanwhile');

# --- a download while the reader reads ------------------------------------
# Pause the follower until its log is collected; it downloads when it goes
# on, and the reader goes on reading meanwhile.
kill 'STOP', $pid{follower};
my $paused_log = $node->safe_psql('postgres', qq{
	SELECT c.log_id FROM synclog.client_pos c JOIN synclog.doc d USING (doc_id)
	 WHERE d.name = '$doc' AND c.client_id = 'f1'});
for my $round (1 .. 3)
{
	# a rotation needs entries to fold
	$node->safe_psql('postgres', qq{
		SELECT synclog.append('$doc', ARRAY[int4send(900 + i)], ARRAY['late $round'::bytea]) FROM generate_series(1, 20) i;
		SELECT synclog.compact('$doc');});
}
sleep 2.5;    # past client_activity_window
$node->safe_psql('postgres', 'SELECT synclog.gc()');
is($node->safe_psql('postgres', "SELECT state FROM synclog.log WHERE log_id = '$paused_log'"),
	'collected', "the paused follower's log was collected");
my $before = parse_export(do { system("'$bin' --doc $doc --dir '$dir' --export '$work/before'"); "$work/before" });
is($before->{log}, $paused_log, 'a reader reads the old state while the follower is away');
($exports, $consistent, $refused) = (0, 0, 0);
kill 'CONT', $pid{follower};
$reader_rounds->(4, sub { });
ok(wait_for(qr/^download-done: .* reason=collected hash=ok/m, 30), 'the follower downloaded (its log was collected)');
is($refused, 0, 'no export refused during the download');
is($consistent, $exports, "every snapshot during the download was consistent ($exports)");

# --- catch up, then the export is the server's snapshot ------------------
$node->safe_psql('postgres', "SELECT synclog.compact('$doc')");
my ($cur_log, $cur_head) = split /\|/, $node->safe_psql('postgres', "SELECT log_id, head_lsn FROM synclog.current_log('$doc')");
my $deadline = time + 30;
my $final;
while (time < $deadline)
{
	system("'$bin' --doc $doc --dir '$dir' --export '$work/final'");
	$final = parse_export("$work/final");
	last if ($final->{log} // '') eq $cur_log && $final->{lsn} == $cur_head;
	sleep 0.3;
}
is("$final->{log}:$final->{lsn}", "$cur_log:$cur_head", 'the follower reached the base of the current log');
{
	my $rows = $node->safe_psql('postgres', qq{
		SELECT 'D' || chr(9) || encode(key, 'hex') || chr(9) || encode(value, 'hex')
		  FROM synclog.snapshot('$doc', '$cur_log', NULL, 1000000) ORDER BY key});
	my $cls = $node->safe_psql('postgres', qq{
		SELECT 'C' || chr(9) || encode(convert_to(client_id, 'UTF8'), 'hex') || chr(9) || client_seq || chr(9) || client_lsn
		  FROM synclog.snapshot_clients('$doc', '$cur_log') ORDER BY convert_to(client_id, 'UTF8')});
	my $hash = $node->safe_psql('postgres', "SELECT encode(snapshot_hash, 'hex') FROM synclog.current_log('$doc')");
	my @r = split /\n/, $rows;
	my @c = split /\n/, $cls;
	# the chain value at the position (protocol version 2)
	my $chain = $node->safe_psql('postgres',
		"SELECT encode(synclog.chain_at('$doc', '$cur_log', $cur_head), 'hex')");
	my $want = "# synclog-export 1 doc=" . unpack('H*', $doc) . " log=$cur_log lsn=$cur_head chain="
	  . $chain . " hash=$hash\n$rows\n$cls\n# end items=" . scalar(@r) . " clients=" . scalar(@c) . "\n";
	is($final->{text}, $want, 'the export is the server snapshot: header, items in key order, watermarks, end line');
}

# --- the change feed -------------------------------------------------------
{
	my $log = slurp_file($fout);
	my ($base) = $log =~ /^download-done: log=\S+ base=(\d+) .*reason=initial/m;
	my ($dl_base) = $log =~ /^download-done: log=\S+ base=(\d+) .*reason=collected/m;
	my @changes = $log =~ /^change: log=\S+ lsn=(\d+) (set|del|wm) ([0-9a-f]*)$/mg;
	my %feed;
	my ($ordered, $prev) = (1, 0);
	while (my ($lsn, $what, $key) = splice(@changes, 0, 3))
	{
		$feed{"$lsn:$key"} = $what;
		$ordered = 0 if $lsn < $prev;
		$prev = $lsn;
	}
	my @appends = split /\n/, $node->safe_psql('postgres', qq{
		SELECT lsn || ':' || encode(int4send(k), 'hex') FROM wlog WHERE lsn > $base ORDER BY lsn});
	my ($missing, $first_missing, $in_diff) = (0, undef, 0);
	for my $a (@appends)
	{
		my ($l, $k) = split /:/, $a;
		next if $l > $cur_head;
		next if ($feed{$a} // '') eq 'set';
		# what the download skipped over is in its difference, at its base
		if (defined $dl_base && $l <= $dl_base && ($feed{"$dl_base:$k"} // '') eq 'set')
		{
			$in_diff++;
			next;
		}
		$missing++;
		$first_missing //= $a;
	}
	cmp_ok(scalar(@appends), '>', 100, scalar(@appends) . ' appends to look for in the feed');
	is($missing, 0, "every append is in the change feed at its LSN ($in_diff in the download's difference)")
	  or diag("first missing: $first_missing");
	ok(defined $dl_base && grep({ /^$dl_base:/ } keys %feed), "the download's difference is in the feed");
	ok($ordered, 'the feed is in LSN order');
}

is(sl_stop(delete $pid{follower}, 'TERM') >> 8, 0, 'the follower exits cleanly');
$node->stop('fast');
done_testing();
