# Catch-up, range repair and the choice of a path (issue 11, PROTOCOL.md
# sections 6a/6b): the reference client against a server whose logs are
# rotated and collected by the test itself (synclog.compact, synclog.gc),
# so that every follower's distance from the head is known.
#
#  - a new follower (no state) chooses between a catch-up from the empty
#    state and a download by sync_cost, and ends equal to the server; with
#    a long active log it catches up from the empty state, and killed
#    mid-way it shows no state until it resumes and ends equal;
#  - a returning follower several rotations behind (its log kept by its
#    acks) catches up: path=catch_up, and the bytes it moves are well below
#    the log's;
#  - a follower killed with SIGKILL in the middle of a catch-up (at a page
#    chosen from the seed), whose replica another process reads meanwhile
#    (the old state), resumes the same catch-up and ends equal to the server;
#  - a follower that did not ack, whose log was collected, repairs by range;
#    killed in the middle of the repair (at a seeded page) and between the
#    verified swap and its commit, it resumes and ends equal to the server;
#    killed mid-repair while the repair's own target log is then collected,
#    it starts over cleanly and ends equal to the server;
#  - a follower whose replica.db has one row changed with sqlite3 finds it
#    on open and repairs it by fetching one bucket (one row) only;
#  - against a server without these functions (one of them renamed away, as
#    an older 0.2 build) the same damage is downloaded, as before them.
# "Equal to the server": --verify rebuilds the server's state at the
# replica's position and compares the hash and every item.
#
# The random choices (which page to stop at) come from one seed, printed at
# the start; SYNCLOG_TEST_SEED=N replays them.  The kills happen at debug
# points (the client stops there and says so), never after a sleep.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use SynclogClientTest;

my $top = $ENV{TESTDIR} or die "TESTDIR is not set";
my $bin = "$top/src/client/synclog-follow";
ok(-x $bin, "the client is built ($bin)") or BAIL_OUT("build the client first: make");
# the pages to stop at come from the seed
my $seed = $ENV{SYNCLOG_TEST_SEED} // int(rand(2**31));
diag("random seed $seed (replay with SYNCLOG_TEST_SEED=$seed)");
srand($seed);

# the worker never rotates by itself here; retention 0 collects a log at
# once unless a client acked in it within the hour
my $node = sl_client_node('catchup_repair',
	'synclog.naptime' => 1, 'synclog.rotate_entries' => 1000000, 'synclog.rotate_size' => 0,
	'synclog.rotate_age' => 0, 'synclog.rotate_min_interval' => 0, 'synclog.retention' => 0,
	'synclog.retention_max' => 0, 'synclog.client_activity_window' => "'1h'");
my $dsn = $node->connstr('postgres');
my $work = PostgreSQL::Test::Utils::tempdir('catchup_repair');

# two documents: in `cr` every follower acks (its logs are kept), in `cr2`
# none does (a sealed log is collected at the next gc)
my %doc_of = (fresh => 'cr', back => 'cr', killed => 'cr', corrupt => 'cr',
	coll => 'cr2', collk => 'cr2', collall => 'cr3', collallk => 'cr3');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# 400 keys of 1000 bytes, in the base of the first log
for my $d (qw(cr cr2 cr3))
{
	sql(qq{SELECT synclog.create_doc('$d');
		SELECT count(synclog.append('$d', ARRAY[int4send(i)],
			ARRAY[convert_to(repeat(md5(i::text), 31), 'UTF8')])) FROM generate_series(1, 400) i;
		SELECT synclog.compact('$d');});
}

# $n appends rewriting keys 1..$nkeys over and over, then a rotation
sub churn
{
	my ($d, $tag, $n, $nkeys) = @_;
	sql(qq{SELECT count(synclog.append('$d', ARRAY[int4send(1 + i % $nkeys)],
		ARRAY[convert_to(repeat(md5(i::text || '$tag'), 31), 'UTF8')])) FROM generate_series(1, $n) i;
		SELECT synclog.compact('$d');});
}

# one synclog-follow run to the head (--once --verify); status and output
sub follow
{
	my ($name, @args) = @_;
	my $out = "$work/$name.out";
	push @args, '--no-ack' if $doc_of{$name} ne 'cr';
	my $pid = sl_follow($out, $bin, $dsn, $doc_of{$name}, "$work/$name", $name, '--once', '--verify', @args);
	my $st = sl_wait($pid);
	my $text = slurp_file($out);
	unlink $out;
	return ($st, $text);
}

# a follower started in the background, to be stopped at a debug point
sub follow_bg
{
	my ($name, $out, @args) = @_;
	push @args, '--no-ack' if $doc_of{$name} ne 'cr';
	return sl_follow($out, $bin, $dsn, $doc_of{$name}, "$work/$name", $name, '--once', @args);
}

# the counters of the last stats line of an output
sub stats_of
{
	my ($text) = @_;
	my @lines = grep { /^stats: / } split /\n/, $text;
	my %s = ($lines[-1] // '') =~ /(\w+)=(\S+)/g;
	return \%s;
}

sub verified
{
	my ($text) = @_;
	return $text =~ /^verify: ok$/m && $text =~ /^verify: server equal: /m;
}

# the position of a replica, read by another process (--export, no server)
sub exported_position
{
	my ($name) = @_;
	my $head = `'$bin' --doc $doc_of{$name} --dir '$work/$name' --export - 2>&1 | head -1`;
	return $head =~ /log=(\S+) lsn=(\d+)/ ? "$1/$2" : "none: $head";
}

my $snapshot_bytes = sql(qq{SELECT snapshot_bytes FROM synclog.sync_cost('cr', NULL, NULL, NULL)});

# --- a new follower, no state --------------------------------------------
{
	my ($st, $out) = follow('fresh');
	is($st, 0, 'fresh: synced') or diag($out);
	like($out, qr/^path: path=(catch_up|download) reason=initial /m, 'fresh: chose by sync_cost');
	ok(verified($out), 'fresh: equal to the server');
	my ($path) = $out =~ /^path: path=(\S+) reason=initial/m;
	note("fresh follower: path=$path");
}

# --- followers that will come back -----------------------------------------
# all at the head of the first log now
my %at_first;
for my $name (qw(back killed corrupt coll collk))
{
	my ($st, $out) = follow($name);
	is($st, 0, "$name: first sync") or diag($out);
	$at_first{$name} = stats_of($out);
}
my %before = map { $_ => exported_position($_) } qw(back killed coll collk);

# four rotations of 300 entries over 60 keys: the log is far larger than
# what changed; in cr2, nobody acked: the first log is collected
for my $d (qw(cr cr2))
{
	churn($d, "r$_", 300, 60) for 1 .. 4;
}
sql('SELECT synclog.gc()');

# --- a returning follower catches up ----------------------------------------
{
	my ($st, $out) = follow('back');
	is($st, 0, 'back: synced') or diag($out);
	my ($replay, $cu) = $out =~ /^path: path=catch_up reason=cheaper replay_bytes=(\d+) catch_up_bytes=(\d+)/m;
	ok(defined $replay, 'back: several rotations behind, it caught up (path=catch_up)') or diag($out);
	my $s = stats_of($out);
	ok(verified($out), 'back: equal to the server');
	cmp_ok($s->{catch_up_bytes}, '<', ($replay // 0) / 4,
		"back: moved $s->{catch_up_bytes} bytes, well below the log's " . ($replay // 'unknown'));
	is($s->{entries} - $at_first{back}{entries}, 0, 'back: replayed no entry');
	note("returning follower: catch_up moved $s->{catch_up_bytes} bytes ($s->{catch_up_rows} rows), "
		  . "replay would have moved " . ($replay // '?') . " bytes");
}

# --- killed in the middle of a catch-up, at a seeded page -----------------
{
	my $page = 1 + int(rand(3));
	my $out = "$work/killed.kill.out";
	my $pid = follow_bg('killed', $out, '--snapshot-rows', '10', '--debug-delay', "catchup-page#$page:600000");
	ok(sl_wait_lines($out, qr/^debug: at catchup-page/, 1, 120), "killed: stopped at catch-up page $page")
	  or diag(slurp_file($out));
	is(exported_position('killed'), $before{killed}, 'killed: another process reads the old state meanwhile');
	sl_stop($pid, 'KILL');
	is(exported_position('killed'), $before{killed}, 'killed: after kill -9, the old state');
	my ($st, $text) = follow('killed', '--snapshot-rows', '10');
	is($st, 0, 'killed: restarted') or diag($text);
	like($text, qr/^staged: catch_up resuming /m, 'killed: resumed the same catch-up');
	unlike($text, qr/^path: /m, 'killed: no new choice before the resumed catch-up ended');
	ok(verified($text), 'killed: equal to the server');
}

# --- a late follower: catch-up from the empty state, killed mid-way -------
# 300 entries over 60 keys in the active log: a download would move the
# snapshot and then replay them all
{
	sql(qq{SELECT count(synclog.append('cr', ARRAY[int4send(1 + i % 60)],
		ARRAY[convert_to(repeat(md5(i::text || 'late'), 31), 'UTF8')])) FROM generate_series(1, 300) i});
	$doc_of{late} = $doc_of{latek} = 'cr';
	my ($st, $out) = follow('late');
	is($st, 0, 'late: synced') or diag($out);
	my ($path, $cu, $snap) = $out =~ /^path: path=(\S+) reason=initial catch_up_bytes=(\d+) snapshot_bytes=(\d+)/m;
	ok(defined $path, 'late: no state, chose by sync_cost') or diag($out);
	is($path, ($cu // 0) < ($snap // 0) ? 'catch_up' : 'download',
		'late: a catch-up from the empty state exactly when its bound is below the snapshot and log ('
		  . ($cu // '?') . ' vs ' . ($snap // '?') . ')');
	ok(verified($out), 'late: equal to the server');
	my $s = stats_of($out);
	note("late follower: path=" . ($path // '?') . ", catch_up moved $s->{catch_up_bytes} bytes ($s->{catch_up_rows} rows), "
		  . "download $s->{bytes_snapshot} bytes and replay $s->{bytes_log}; sync_cost: catch_up_bytes="
		  . ($cu // '?') . " snapshot_bytes=" . ($snap // '?'));

	# from the empty state the bound is the head state's bytes, below the
	# snapshot plus an active log that rewrote its keys five times
	is($path, 'catch_up', 'late: caught up from the empty state');
	{
		my $page = 1 + int(rand(3));
		my $kout = "$work/latek.kill.out";
		my $pid = follow_bg('latek', $kout, '--snapshot-rows', '50', '--debug-delay', "catchup-page#$page:600000");
		ok(sl_wait_lines($kout, qr/^debug: at catchup-page/, 1, 120),
			"latek: stopped at page $page of a catch-up from the empty state")
		  or diag(slurp_file($kout));
		like(exported_position('latek'), qr/^none/, 'latek: no state is visible before the catch-up is complete');
		sl_stop($pid, 'KILL');
		like(exported_position('latek'), qr/^none/, 'latek: after kill -9, still no state');
		my ($st2, $text) = follow('latek', '--snapshot-rows', '50');
		is($st2, 0, 'latek: restarted') or diag($text);
		like($text, qr/^staged: catch_up resuming /m, 'latek: resumed the same catch-up');
		ok(verified($text), 'latek: equal to the server');
	}
}

# --- a collected log: range repair, killed mid-way and in the swap ---------
{
	my ($st, $out) = follow('coll');
	is($st, 0, 'coll: synced') or diag($out);
	like($out, qr/^path: path=range_repair reason=(collected|unknown-log)/m, 'coll: its log was collected (SL003, or SL002 once its record is gone too), it repaired by range');
	my $s = stats_of($out);
	ok(verified($out), 'coll: equal to the server');
	cmp_ok($s->{range_repair_buckets}, '<=', 60, "coll: fetched $s->{range_repair_buckets} buckets (60 keys changed)");
	cmp_ok($s->{range_repair_bytes}, '<', $snapshot_bytes,
		"coll: moved $s->{range_repair_bytes} bytes, below a download's $snapshot_bytes");
	note("collected follower: range repair moved $s->{range_repair_bytes} bytes, $s->{range_repair_buckets} buckets, "
		  . "$s->{range_repair_rows} rows (a download: $snapshot_bytes)");

	# killed at a seeded page, then between the verified swap and its
	# commit; the third time the repair's own target log is collected
	# while the client is down: it must start over cleanly
	my $page = 1 + int(rand(3));
	for my $case ([ "repair-page#$page", 0 ], [ 'repair-staged', 0 ], [ 'repair-page#1', 1 ])
	{
		my ($point, $collect) = @$case;
		my $kout = "$work/collk.$point.$collect.out";
		# its log is collected once two rotations are past it
		churn('cr2', "k$point$_", 100, 60) for 1 .. 2;
		sql('SELECT synclog.gc()');
		my $pos = exported_position('collk');
		my $pid = follow_bg('collk', $kout, '--snapshot-rows', '10', '--debug-delay', "$point:600000");
		my ($p) = $point =~ /^([a-z-]+)/;
		ok(sl_wait_lines($kout, qr/^debug: at $p/, 1, 120), "collk: stopped at $point") or diag(slurp_file($kout));
		is(exported_position('collk'), $pos, "collk ($point): another process reads the old state");
		sl_stop($pid, 'KILL');
		is(exported_position('collk'), $pos, "collk ($point): after kill -9, the old state");
		if ($collect)
		{
			churn('cr2', "g$_", 100, 60) for 1 .. 2;
			sql('SELECT synclog.gc()');
		}
		my ($st2, $text) = follow('collk', '--snapshot-rows', '10');
		is($st2, 0, "collk ($point): restarted") or diag($text);
		like($text, qr/^staged: range_repair resuming /m, "collk ($point): resumed the same repair");
		if ($collect)
		{
			like($text, qr/^warning: range_repair: the server no longer has log .*starting over/m,
				"collk ($point, target collected): the repair's target went away, it started over");
			is(scalar(() = $text =~ /^path: path=range_repair /mg), 1,
				"collk ($point, target collected): chose a range repair again");
		}
		ok(verified($text), "collk ($point): equal to the server");
	}
}

# --- a collected log after every key changed: a range repair at the head ---
# fetches every bucket once, the head state and the range hashes, and no log
{
	my ($st, $out) = follow('collall');
	is($st, 0, 'collall: synced') or diag($out);
	my $s0 = stats_of($out);
	($st, $out) = follow('collallk');
	is($st, 0, 'collallk: synced') or diag($out);
	my $pos = exported_position('collallk');
	# every key rewritten, then more writes to a few keys in the active log
	churn('cr3', "all$_", 400, 400) for 1 .. 2;
	sql(q{SELECT synclog.gc()});
	sql(q{SELECT count(synclog.append('cr3', ARRAY[int4send(1 + i % 5)],
		ARRAY[convert_to(repeat(md5(i::text || 'tail'), 31), 'UTF8')])) FROM generate_series(1, 200) i});
	($st, $out) = follow('collall');
	is($st, 0, 'collall: synced again') or diag($out);
	like($out, qr/^path: path=range_repair reason=(collected|unknown-log)/m,
		'collall: its log collected and every bucket different, it repaired by range at the head');
	ok(verified($out), 'collall: equal to the server');
	my $s = stats_of($out);
	my $head = sql(q{SELECT catch_up_bytes FROM synclog.sync_cost('cr3', NULL, NULL, NULL)});
	cmp_ok($s->{range_repair_bytes}, '<', 1.1 * $head,
		"collall: moved $s->{range_repair_bytes} bytes, the head state's $head and the range hashes");
	is($s->{entries} - $s0->{entries}, 0, 'collall: at the head after the repair, no entry to replay');

	# the same, killed at a seeded page: the old state stays readable, and
	# the restarted follower resumes the repair
	my $page = 1 + int(rand(3));
	my $kout = "$work/collallk.kill.out";
	my $pid = follow_bg('collallk', $kout, '--snapshot-rows', '50', '--debug-delay', "repair-page#$page:600000");
	ok(sl_wait_lines($kout, qr/^debug: at repair-page/, 1, 120), "collallk: stopped at page $page")
	  or diag(slurp_file($kout));
	is(exported_position('collallk'), $pos, 'collallk: another process reads the old state');
	sl_stop($pid, 'KILL');
	is(exported_position('collallk'), $pos, 'collallk: after kill -9, the old state');
	my ($st2, $text) = follow('collallk', '--snapshot-rows', '50');
	is($st2, 0, 'collallk: restarted') or diag($text);
	like($text, qr/^staged: range_repair resuming /m, 'collallk: resumed the same repair');
	ok(verified($text), 'collallk: equal to the server');
}

# --- a row changed in replica.db: one bucket fetched ------------------------
# (right after a rotation, then at the head of an active log that changed
# 60 keys since its base: the repair compares at the head, one bucket still)
{
	sql(q{SELECT synclog.compact('cr')});
	my ($st0, $out0) = follow('corrupt');
	is($st0, 0, 'corrupt: at the head, the base of the current log') or diag($out0);
	my $s0 = stats_of($out0);
	my $db = "$work/corrupt/replica.db";
	my $r = system('sqlite3', $db, "UPDATE item SET val = x'0badc0de' WHERE (gen, ns, key) IN "
		  . "(SELECT gen, ns, key FROM item WHERE ns = 1 AND gen = (SELECT gen FROM meta) ORDER BY key LIMIT 1 OFFSET 17)");
	is($r, 0, 'corrupt: one value changed with sqlite3');
	my ($st, $out) = follow('corrupt');
	is($st, 0, 'corrupt: synced') or diag($out);
	like($out, qr/^corrupt: state damaged .*keeping it readable/m, 'corrupt: found on open');
	like($out, qr/^path: path=range_repair reason=local-corrupt/m, 'corrupt: repaired by range');
	my $s = stats_of($out);
	is($s->{range_repair_buckets} - $s0->{range_repair_buckets}, 1, 'corrupt: one bucket fetched');
	is($s->{range_repair_rows} - $s0->{range_repair_rows}, 1, 'corrupt: one row fetched');
	is($s->{downloads} - $s0->{downloads}, 0, 'corrupt: no download');
	ok(verified($out), 'corrupt: equal to the server');
	my $moved = $s->{range_repair_bytes} - $s0->{range_repair_bytes};
	cmp_ok($moved, '<', $snapshot_bytes / 10, "corrupt: moved $moved bytes, under 10% of a download's $snapshot_bytes");
	note("corrupted follower: range repair moved $moved bytes (range hashes and one row) against $snapshot_bytes");

	# 300 entries over 60 keys after the base, replayed; then a row damaged
	sql(q{SELECT count(synclog.append('cr', ARRAY[int4send(1 + i % 60)],
		ARRAY[convert_to(repeat(md5(i::text || 'mid'), 31), 'UTF8')])) FROM generate_series(1, 300) i});
	($st0, $out0) = follow('corrupt');
	is($st0, 0, 'corrupt (mid-log): at the head of the active log') or diag($out0);
	$s0 = stats_of($out0);
	$r = system('sqlite3', $db, "UPDATE item SET val = x'0badc0de' WHERE (gen, ns, key) IN "
		  . "(SELECT gen, ns, key FROM item WHERE ns = 1 AND gen = (SELECT gen FROM meta) ORDER BY key LIMIT 1 OFFSET 3)");
	is($r, 0, 'corrupt (mid-log): one value changed with sqlite3');
	($st, $out) = follow('corrupt');
	is($st, 0, 'corrupt (mid-log): synced') or diag($out);
	like($out, qr/^path: path=range_repair reason=local-corrupt/m, 'corrupt (mid-log): repaired by range');
	$s = stats_of($out);
	is($s->{range_repair_buckets} - $s0->{range_repair_buckets}, 1, 'corrupt (mid-log): one bucket fetched');
	is($s->{range_repair_rows} - $s0->{range_repair_rows}, 1, 'corrupt (mid-log): one row fetched');
	is($s->{entries} - $s0->{entries}, 0, 'corrupt (mid-log): nothing replayed after it');
	is($s->{downloads} - $s0->{downloads}, 0, 'corrupt (mid-log): no download');
	ok(verified($out), 'corrupt (mid-log): equal to the server');
}

# --- a server without the functions: today's way ---------------------------
# (as an older 0.2 build: protocol version 2, no catch-up or range reads)
{
	sql('ALTER FUNCTION synclog.catch_up_target(text) RENAME TO catch_up_target_hidden');
	my $db = "$work/corrupt/replica.db";
	system('sqlite3', $db, "UPDATE item SET val = x'0badc0de' WHERE (gen, ns, key) IN "
		  . "(SELECT gen, ns, key FROM item WHERE ns = 1 AND gen = (SELECT gen FROM meta) ORDER BY key LIMIT 1 OFFSET 5)");
	my ($st, $out) = follow('corrupt');
	is($st, 0, 'old server: synced') or diag($out);
	like($out, qr/^path: path=download reason=local-corrupt \(the server has no catch-up or range functions\)/m,
		'old server: a damaged row is downloaded, as before');
	like($out, qr/^download-done: .* reason=local-corrupt hash=ok/m, 'old server: the download verified');
	ok(verified($out), 'old server: equal to the server');
	sql('ALTER FUNCTION synclog.catch_up_target_hidden(text) RENAME TO catch_up_target');
}

# --- the counters are totals: a later run never shows less -----------------
for my $name (qw(back collall))
{
	# a log to replay first (200 distinct keys, under the 256 KiB a
	# client always replays), timed by replay_ms after its last commit
	sql(qq{SELECT count(synclog.append('$doc_of{$name}', ARRAY[int4send(5000 + i)],
		ARRAY[convert_to(repeat(md5(i::text || 'total'), 31), 'UTF8')])) FROM generate_series(1, 200) i});
	my ($st1, $out1) = follow($name);
	my ($st2, $out2) = follow($name);
	is($st1 + $st2, 0, "$name: two more runs") or diag($out1 . $out2);
	my ($s1, $s2) = (stats_of($out1), stats_of($out2));
	my @back = grep { $s1->{$_} =~ /^\d+$/ && $s2->{$_} =~ /^\d+$/ && $_ ne 'lsn' && $s2->{$_} < $s1->{$_} } sort keys %$s1;
	is("@back", '', "$name: no counter went backwards between runs");
}

done_testing();
