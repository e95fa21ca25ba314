# The page-store profile: a real SQLite database replicated page by page
# (test/client/page_writer: inserts, updates, rows larger than a page, an
# index dropped and built again, deletes and a VACUUM that shrinks the
# file; after every SQLite transaction its changed pages are appended as
# one entry, key = page number as 4 bytes big-endian from 1, and the pages
# past a shrunk end deleted), followed by synclog-follow --page-file while
# the worker rotates and collects.
#
# Meanwhile the page file is opened read-only with sqlite3 again and again:
# every sample passes PRAGMA integrity_check.  The follower is killed with
# SIGKILL in the middle of an update of the page file (pages written, its
# rollback journal not yet deleted): SQLite itself rolls the hot journal
# back, the file passes integrity_check again, and the restarted follower
# carries on.  At the end the page file is byte for byte the writer's
# database file (SHA-256), shrinks included.
use strict;
use warnings;
use Digest::SHA;
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
{
	my $out = `make -s -C '$top/test/client' page_writer 2>&1`;
	is($?, 0, 'the page writer builds') or BAIL_OUT($out);
}
my $writer_bin = "$top/test/client/page_writer";
my ($sqlite) = map { "$_/sqlite3" } grep { -x "$_/sqlite3" } split /:/, $ENV{PATH};
ok($sqlite, 'sqlite3 is installed') or BAIL_OUT('install sqlite3');

my $node = sl_client_node('client_pagefile',
	'synclog.naptime' => 1, 'synclog.rotate_entries' => 8, 'synclog.rotate_size' => 0,
	'synclog.rotate_age' => 0, 'synclog.rotate_min_interval' => 0, 'synclog.retention' => 0,
	'synclog.retention_max' => 0, 'synclog.client_activity_window' => "'10s'");
my $dsn = $node->connstr('postgres');
my $doc = 'pages';
$node->safe_psql('postgres', "SELECT synclog.create_doc('$doc')");

my $work = PostgreSQL::Test::Utils::tempdir('client_pagefile');
my $dir = "$work/replica";
my $copy = "$work/copy.db";
my $wdb = "$work/writer.db";
my $fout = "$work/follow.out";
my %pid;

sub start_follower
{
	$pid{follower} = sl_follow($fout, $bin, $dsn, $doc, $dir, 'pf', '--page-file', $copy, @_);
}

sub wait_for { return sl_wait_lines($fout, @_); }

# integrity_check of the page file as an application opens it; returns
# sqlite3's output (it waits out the follower's locks).
sub check_file
{
	my ($readonly) = @_;
	my $out = `'$sqlite' @{[ $readonly ? '-readonly' : '' ]} -cmd '.timeout 10000' '$copy' 'PRAGMA integrity_check' 2>&1`;
	chomp $out;
	return $out;
}

start_follower();
ok(wait_for(qr/^download-done: .* hash=ok/m, 1), 'the follower downloaded the (empty) document');

# --- the writer, slowly, so that the worker rotates and collects meanwhile
my $writer = sl_spawn("$work/writer.out", $writer_bin, $dsn, $doc, $wdb, '160', '7', '60');
$pid{writer} = $writer;

my ($samples, $good) = (0, 0);
sub sample_for
{
	my ($seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		next unless -e $copy;
		my $out = check_file(1);
		$samples++;
		if ($out eq 'ok') { $good++; }
		else { diag("integrity_check of the page file: $out"); }
		sleep 0.1;
	}
}
sample_for(3);

# --- kill -9 in the middle of an update of the page file ------------------
sl_stop(delete $pid{follower}, 'TERM');
start_follower('--debug-delay', 'pagefile-written:10000');
ok(wait_for(qr/^debug: at pagefile-written/m, 1, 20), 'the follower is held in the middle of a page file update');
sl_stop(delete $pid{follower}, 'KILL');
ok(-s "$copy-journal", 'it left a hot rollback journal');
is(check_file(0), 'ok', 'SQLite rolls the journal back: the page file passes integrity_check');
ok(!-e "$copy-journal", 'the journal is gone');
start_follower();
sample_for(3);

is(sl_wait(delete $pid{writer}) >> 8, 0, 'the writer ran its 160 rounds') or diag(slurp_file("$work/writer.out"));
my $wout = slurp_file("$work/writer.out");
my @shrinks = $wout =~ /deleted ([1-9]\d*)/g;
cmp_ok(scalar(@shrinks), '>=', 3, scalar(@shrinks) . ' transactions shrank the file (VACUUM)');

# --- converge ----------------------------------------------------------------
my $head = $node->safe_psql('postgres', "SELECT head_lsn FROM synclog.current_log('$doc')");
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM synclog.client_pos c JOIN synclog.doc_head d USING (doc_id)
	 WHERE c.client_id = 'pf' AND c.log_id = d.active_log AND c.lsn = d.head_lsn}),
	"the follower reached the head (lsn $head)");
# The page file is written right after the commit that the ack follows:
# wait for that (the file equals the writer's database), then sample it.
{
	my $want = Digest::SHA->new(256)->addfile($wdb)->hexdigest;
	my $deadline = time + 60;
	sleep 0.1 while Digest::SHA->new(256)->addfile($copy)->hexdigest ne $want && time < $deadline;
}
sample_for(0.5);
cmp_ok($samples, '>=', 20, "$samples samples of the page file taken while it changed");
is($good, $samples, 'every sample passed integrity_check');
{
	my $a = Digest::SHA->new(256)->addfile($wdb)->hexdigest;
	my $b = Digest::SHA->new(256)->addfile($copy)->hexdigest;
	is($b, $a, 'the page file is the writer\'s database byte for byte (SHA-256)');
	is(-s $copy, -s $wdb, 'same size (' . (-s $wdb) . ' bytes)');
}
like(slurp_file($fout), qr/^switch: /m, 'the follower switched logs by marker');
my $rot = $node->safe_psql('postgres', 'SELECT rotations || \' \' || logs_collected FROM synclog.stats_total');
my ($rotations, $collected) = split / /, $rot;
cmp_ok($rotations, '>=', 5, "the worker rotated meanwhile ($rotations rotations)");
cmp_ok($collected, '>=', 1, "and collected ($collected logs)");
like(slurp_file($fout), qr/^repair: page file: rolled back|^open: resumed/m, 'the restarted follower resumed');

is(sl_stop(delete $pid{follower}, 'TERM') >> 8, 0, 'the follower exits cleanly');
$node->stop('fast');
done_testing();
