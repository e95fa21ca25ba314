# Positions that identify history (protocol version 2) and compaction
# paused during a logical restore.
#
# A client that read entries the server no longer has is told so (SL006)
# on its first request, whatever happened to the server:
#  - failover to an asynchronous standby that missed the last commits,
#    after which the new primary gave those LSNs to other entries;
#  - a point-in-time recovery to a moment before what clients had read;
# and a client whose history survived reads on without a download.  Each
# diverged client recovers by a download and ends equal to the server.
#
# A logical restore (pg_restore with kv loaded last, and with -j 4) with the
# worker running: the worker leaves the database alone while pg_restore is
# connected, and every document passes recompute_hash and the marker checks
# afterwards; then the worker rotates again.
#
# Two clients check it: one written from PROTOCOL.md alone (sections 3a,
# 4a, 6), in Perl over psql, which keeps its position (log, LSN, chain
# value) and its state (data and watermarks) on the test's side across
# servers; and the reference client (synclog-follow), whose replicas are
# pointed at the new server, and which reports how each one recovered.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time sleep);
use FindBin;
use lib $FindBin::Bin;
use SynclogWorker;

my $top = $ENV{TESTDIR} or die "TESTDIR is not set";
my $bin = "$top/src/client/synclog-follow";
ok(-x $bin, "the reference client is built ($bin)") or BAIL_OUT("build the client first: make");
my $work = PostgreSQL::Test::Utils::tempdir('history');

# The reference client: one sync of replica $dir from $node, verified.
sub ref_sync
{
	my ($node, $doc, $dir) = @_;
	my $dsn = $node->connstr('postgres');
	my $out = `'$bin' --dsn '$dsn' --doc $doc --dir '$work/$dir' --client-id $dir --once --verify --no-progress 2>&1`;
	my $rc = $? >> 8;
	return ($rc, $out);
}
sub ref_ok { my ($rc, $out) = @_; return $rc == 0 && $out =~ /^verify: ok$/m && $out =~ /^verify: server equal: /m; }
# the reasons of its downloads and range repairs (a client with a state
# repairs by range when the server has the range functions, issue 11)
sub ref_downloads { my ($out) = @_; return [ $out =~ /^(?:download-start: .* |path: path=range_repair )reason=(\S+)/mg ]; }

# --- the spec client ----------------------------------------------------------

sub new_client { return { name => $_[0], data => {}, wm => {}, downloads => 0 }; }

# Run SQL; returns (stdout, sqlstate or '').
sub q_state
{
	my ($node, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, "\\set VERBOSITY sqlstate\n$sql", stdout => \$out, stderr => \$err);
	my ($st) = $err =~ /ERROR:\s+([0-9A-Z]{5})/;
	return ($out, $st // '');
}

sub apply_row
{
	my ($node, $db, $c, $row) = @_;
	my ($lsn, $kind, $delta, $cid, $seq, $chain, $gl, $ge) = @$row;
	for my $ch (split /\n/, $node->safe_psql($db,
			"SELECT encode(key, 'hex') || ' ' || coalesce(encode(value, 'hex'), '-') FROM synclog.decode_delta('\\x$delta')"))
	{
		my ($k, $v) = split / /, $ch;
		if ($v eq '-') { delete $c->{data}{$k}; } else { $c->{data}{$k} = $v; }
	}
	$c->{wm}{$cid} = "$seq/$lsn" if $cid ne '';
	$c->{lsn} = $lsn;
	$c->{chain} = $chain;
}

# Download the current snapshot (section 6) and position at its base.
sub download
{
	my ($node, $db, $doc, $c) = @_;
	my ($log, $base) = split /\|/, $node->safe_psql($db,
		"SELECT log_id, base_lsn FROM synclog.current_log('$doc')");
	my %data;
	for (split /\n/, $node->safe_psql($db,
			"SELECT encode(key, 'hex') || ' ' || encode(value, 'hex') FROM synclog.snapshot('$doc', '$log')"))
	{
		my ($k, $v) = split / /;
		$data{$k} = $v;
	}
	my %wm;
	for (split /\n/, $node->safe_psql($db,
			"SELECT client_id || ' ' || client_seq || '/' || client_lsn FROM synclog.snapshot_clients('$doc', '$log')"))
	{
		my ($k, $v) = split / /;
		$wm{$k} = $v;
	}
	$c->{data} = \%data;
	$c->{wm} = \%wm;
	$c->{log} = $log;
	$c->{lsn} = $base;
	$c->{chain} = substr($node->safe_psql($db,
		"SELECT encode(synclog.base_chain('$doc', '$log'), 'hex')"), 0);
	$c->{downloads}++;
}

# Read with read2 until caught up; apply whole groups, cross markers.
# Returns '' or the SQLSTATE that stopped it.
sub follow
{
	my ($node, $db, $doc, $c, $max_entries) = @_;
	$max_entries //= 5;
	for (;;)
	{
		my ($out, $st) = q_state($node, $db,
			"SELECT lsn, kind, coalesce(encode(delta, 'hex'), ''), coalesce(client_id, ''), "
			  . "coalesce(client_seq::text, ''), encode(chain, 'hex'), coalesce(group_lsn::text, ''), "
			  . "coalesce(group_end::text, ''), coalesce(next_log_id, '') "
			  . "FROM synclog.read2('$doc', '$c->{log}', $c->{lsn}, '\\x$c->{chain}', $max_entries)");
		return $st if $st ne '';
		my @rows = map { [ split /\|/, $_, -1 ] } grep { $_ ne '' } split /\n/, $out;
		return '' if !@rows;
		my @group;
		for my $r (@rows)
		{
			if ($r->[1] eq 'end')
			{
				die "marker inside a group" if @group;
				die "marker chain differs" if $r->[5] ne $c->{chain};
				$c->{log} = $r->[8];
				next;
			}
			push @group, $r;
			if ($r->[7] eq 'true')
			{
				apply_row($node, $db, $c, $_) for @group;
				@group = ();
			}
		}
		die "page ended inside a group" if @group;
	}
}

# The client's state equals the server's state at the head.
sub state_of
{
	my ($c) = @_;
	return join(',', map { "$_=$c->{data}{$_}" } sort keys %{ $c->{data} }) . ';'
	  . join(',', map { "$_=$c->{wm}{$_}" } sort keys %{ $c->{wm} });
}

sub server_state
{
	my ($node, $db, $doc) = @_;
	my $c = new_client('probe');
	download($node, $db, $doc, $c);
	follow($node, $db, $doc, $c, 1000) eq '' or die "probe could not follow";
	return state_of($c);
}

# What a client does on its next request: follow; on SL006 download and follow.
sub resync
{
	my ($node, $db, $doc, $c) = @_;
	my $st = follow($node, $db, $doc, $c);
	if ($st eq 'SL006' || $st eq 'SL004' || $st eq 'SL002' || $st eq 'SL003')
	{
		download($node, $db, $doc, $c);
		my $again = follow($node, $db, $doc, $c);
		die "after a download: $again" if $again ne '';
	}
	elsif ($st ne '')
	{
		die "unexpected $st";
	}
	return $st;
}

sub append_sql
{
	my ($doc, $from, $to, $tag) = @_;
	return "SELECT synclog.append('$doc', ARRAY[int4send(i % 13)], "
	  . "ARRAY[convert_to('$tag' || i, 'UTF8')], '$tag-writer', i) FROM generate_series($from, $to) i;";
}

# --- 1. failover to an asynchronous standby that missed commits ---------------

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', q{CREATE EXTENSION synclog; SELECT synclog.create_doc('f');});
$primary->safe_psql('postgres', append_sql('f', 1, 30, 'old'));
$primary->safe_psql('postgres', q{SELECT synclog.compact('f')});
$primary->safe_psql('postgres', append_sql('f', 31, 40, 'old'));
# a transaction of several entries: one group
$primary->safe_psql('postgres', "BEGIN; " . append_sql('f', 41, 44, 'grp') . " COMMIT;");

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

my %c = map { $_ => new_client($_) } qw(kept early lost lost_end);
download($primary, 'postgres', 'f', $_) for values %c;
is(follow($primary, 'postgres', 'f', $_), '', "client $_->{name} follows the primary") for values %c;
is($c{kept}{lsn}, 44, 'the clients are at LSN 44, which the standby has');
for my $r (qw(ref_kept ref_lost))
{
	my ($rc, $out) = ref_sync($primary, 'f', $r);
	ok(ref_ok($rc, $out), "reference client $r follows the primary") or diag($out);
}
$c{early}{downloads} = $c{kept}{downloads} = 0;

# The standby stops receiving; the primary goes on; two clients read on.
$standby->stop;
$primary->safe_psql('postgres', append_sql('f', 45, 60, 'lost'));
is(follow($primary, 'postgres', 'f', $c{lost}), '', 'client lost reads the commits the standby misses');
{
	my ($rc, $out) = ref_sync($primary, 'f', 'ref_lost');
	ok(ref_ok($rc, $out) && $out =~ /^stats: .* lsn=60 /m,
		'reference client ref_lost reads them too') or diag($out);
}
$primary->safe_psql('postgres', q{SELECT synclog.compact('f')});
is(follow($primary, 'postgres', 'f', $c{lost_end}), '', 'client lost_end reads them and a marker the standby misses');
is($c{lost}{lsn}, 60, 'client lost is at LSN 60');
$c{lost}{downloads} = $c{lost_end}{downloads} = 0;

# A writer whose mutation the old primary committed, killed before the
# reply (so the mutation is still in its queue), after it had read the
# commits the standby misses.
{
	my ($rc, $out) = ref_sync($primary, 'f', 'ref_writer');
	ok(ref_ok($rc, $out) && $out =~ /^stats: .* lsn=60 /m, 'reference client ref_writer reads to LSN 60')
	  or diag($out);
	my $file = "$work/mutation.txt";
	open my $mf, '>', $file or die;
	print $mf "77726974=6f6c64\n";    # "writ" -> "old"
	close $mf;
	my $dsn = $primary->connstr('postgres');
	my $o = '';
	my $h = IPC::Run::start([ $bin, '--dsn', $dsn, '--doc', 'f', '--dir', "$work/ref_writer",
			'--client-id', 'ref_writer', '--submit-text', $file, '--debug-delay', 'submit-sent:60000' ],
		'<', \undef, '>&', \$o);
	my $deadline = time + 60;
	$h->pump_nb while $o !~ /^debug: at submit-sent/m && time < $deadline && sleep(0.1) >= 0;
	like($o, qr/^debug: at submit-sent/m, 'ref_writer sent its mutation and waits before the reply');
	$h->signal('KILL');
	$h->finish;
	is($primary->safe_psql('postgres', q{SELECT count(*) FROM synclog.entry WHERE client_id = 'ref_writer'}),
		'1', 'the old primary committed the mutation; the writer was killed before its reply');
}

# The primary is lost; the standby is promoted and takes different appends.
$primary->stop('immediate');
$standby->start;
$standby->promote;
$standby->safe_psql('postgres', append_sql('f', 45, 70, 'new'));
is($standby->safe_psql('postgres', q{SELECT head_lsn FROM synclog.current_log('f')}), '70',
	'the new primary gave LSNs 45 to 70 to other entries');

is(follow($standby, 'postgres', 'f', $c{lost}), 'SL006',
	'client lost gets SL006 on its first request to the new primary');
is(follow($standby, 'postgres', 'f', $c{lost_end}), 'SL002',
	'client lost_end, in a log the new primary never had, gets SL002');
my ($out, $st) = q_state($standby, 'postgres',
	"SELECT synclog.ack2('f', 'lost', '$c{lost}{log}', $c{lost}{lsn}, '\\x$c{lost}{chain}')");
is($st, 'SL006', 'ack2 of a lost position gets SL006 too');
my $want = server_state($standby, 'postgres', 'f');
for my $name (qw(kept lost lost_end))
{
	resync($standby, 'postgres', 'f', $c{$name});
	is(state_of($c{$name}), $want, "client $name ends equal to the new primary");
}
is($c{kept}{downloads}, 0, 'the client whose history survived downloaded nothing');

# The reference clients against the new primary.
my %recovered;
for my $r (qw(ref_kept ref_lost))
{
	my ($rc, $out) = ref_sync($standby, 'f', $r);
	ok(ref_ok($rc, $out), "reference client $r ends equal to the new primary") or diag($out);
	$recovered{$r} = join(',', @{ ref_downloads($out) }) || 'none';
}
{
	my ($rc, $out) = ref_sync($standby, 'f', 'ref_writer');
	# it had crossed a marker only the old primary wrote: its log is unknown
	ok(ref_ok($rc, $out) && $out =~ /^(?:download-start: .* |path: path=range_repair )reason=(diverged|unknown-log)/m,
		'ref_writer finds its history gone (SL006 or SL002) and repairs by range (or downloads)') or diag($out);
	is($standby->safe_psql('postgres',
			q{SELECT count(*) || ':' || min(client_seq) FROM synclog.entry WHERE client_id = 'ref_writer'}),
		'1:1', 'its pending mutation, lost with the old primary, was resubmitted to the new one, once');
	my $pending = `'$bin' --dsn '' --doc f --dir '$work/ref_writer' --pending 2>&1`;
	unlike($pending, qr/^pending seq=/m, 'its queue is empty') or diag($pending);
}
is($recovered{ref_lost}, 'diverged', 'reference client ref_lost detected the divergence and repaired (range repair or download) once');
is($recovered{ref_kept}, 'none', 'reference client ref_kept continued without a download');
note("failover: 1 of 2 reference clients diverged; downloads by reason: "
	  . join('; ', map { "$_=$recovered{$_}" } sort keys %recovered));
is($c{lost}{downloads} + $c{lost_end}{downloads}, 2, 'each diverged client downloaded once');
$standby->stop;

# --- 2. point-in-time recovery behind the clients -------------------------------

my $orig = PostgreSQL::Test::Cluster->new('orig');
$orig->init(has_archiving => 1, allows_streaming => 1);
$orig->start;
$orig->safe_psql('postgres', q{CREATE EXTENSION synclog; SELECT synclog.create_doc('p');});
$orig->safe_psql('postgres', append_sql('p', 1, 20, 'a'));
$orig->backup('pitr_bk');
$orig->safe_psql('postgres', append_sql('p', 21, 30, 'a'));
my $target = $orig->safe_psql('postgres', q{SELECT pg_current_wal_insert_lsn()});
$orig->safe_psql('postgres', append_sql('p', 31, 45, 'b'));
my %p = map { $_ => new_client($_) } qw(behind ahead);
download($orig, 'postgres', 'p', $_) for values %p;
is(follow($orig, 'postgres', 'p', $p{ahead}), '', 'client ahead reads to LSN 45');
$p{behind}{downloads} = $p{ahead}{downloads} = 0;
# client behind stays at the recovery target's LSN 30: re-position it there
$p{behind} = new_client('behind');
download($orig, 'postgres', 'p', $p{behind});
$p{behind}{downloads} = 0;
$orig->safe_psql('postgres', q{SELECT pg_switch_wal()});
$orig->stop;

my $pitr = PostgreSQL::Test::Cluster->new('pitr');
$pitr->init_from_backup($orig, 'pitr_bk', has_restoring => 1);
$pitr->append_conf('postgresql.conf', qq{
recovery_target_lsn = '$target'
recovery_target_action = 'promote'
});
$pitr->start;
ok($pitr->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the PITR copy recovered and promoted');
is($pitr->safe_psql('postgres', q{SELECT head_lsn FROM synclog.current_log('p')}), '30',
	'it stopped at LSN 30');
$pitr->safe_psql('postgres', append_sql('p', 31, 50, 'c'));
is(follow($pitr, 'postgres', 'p', $p{ahead}), 'SL006', 'client ahead of the recovery point gets SL006');
$want = server_state($pitr, 'postgres', 'p');
resync($pitr, 'postgres', 'p', $_) for values %p;
is(state_of($p{$_}), $want, "client $_ ends equal to the recovered server") for qw(behind ahead);
is($p{behind}{downloads}, 0, 'the client behind the recovery point downloaded nothing');
$pitr->stop;

# --- 3. logical restore with the worker running ---------------------------------

my $node = PostgreSQL::Test::Cluster->new('restore');
$node->init;
$node->append_conf('postgresql.conf', worker_conf());
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION synclog;
SELECT synclog.create_doc('d' || i) FROM generate_series(1, 40) i;
-- a table that takes pg_restore a few seconds, so the worker has rounds to run meanwhile
CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 2000000) g;
CREATE INDEX ON filler (t);
CREATE INDEX ON filler (md5(t));
});
# Fill the documents with the worker paused, so the dump holds due
# documents with long active logs, then dump.
$node->safe_psql('postgres', q{ALTER SYSTEM SET synclog.worker_paused = on; SELECT pg_reload_conf();});
$node->safe_psql('postgres', q{
SELECT synclog.append('d' || d, ARRAY[int4send(i % 7)], ARRAY[int4send(i * d)], 'w' || (d % 3), i)
  FROM generate_series(1, 40) d, generate_series(1, 23) i;
SELECT synclog.compact('d' || d) FROM generate_series(1, 40, 2) d;
SELECT synclog.append('d' || d, ARRAY[int4send(i % 5)], CASE WHEN i % 4 = 0 THEN ARRAY[NULL::bytea] ELSE ARRAY[int4send(-i)] END)
  FROM generate_series(1, 40) d, generate_series(1, 11) i;
});
my $dumpdir = $node->basedir . '/dump';
$node->command_ok([ 'pg_dump', '-Fd', '-j', '2', '-f', $dumpdir, '-d', $node->connstr('postgres') ], 'pg_dump -Fd');
# the rotations the dump records (the worker is paused): a restored copy
# starts from this count, and only rotations after the restore add to it
my $rot = $node->safe_psql('postgres', q{SELECT sum(rotations) FROM synclog.stats});
$node->safe_psql('postgres', q{ALTER SYSTEM SET synclog.worker_paused = off; SELECT pg_reload_conf();});

# The worst order: the state versions (kv) last, after the filler.
my ($list) = run_command([ 'pg_restore', '-l', $dumpdir ]);
my @items = split /\n/, $list;
my @kv = grep { /TABLE DATA synclog kv / } @items;
is(scalar @kv, 1, 'the dump holds synclog.kv');
my @rest = grep { !/TABLE DATA synclog kv / } @items;
my $listfile = $node->basedir . '/list';
open my $fh, '>', $listfile or die;
print $fh join("\n", @rest, @kv), "\n";
close $fh;

sub check_restored
{
	my ($db, $label) = @_;
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id)
			 WHERE l.state <> 'collected'
			   AND l.snapshot_hash IS DISTINCT FROM synclog.recompute_hash(d.name, l.log_id)}),
		'0', "$label: every snapshot hash equals its recomputation");
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM synclog.log a JOIN synclog.log b
			    ON b.doc_id = a.doc_id AND b.generation = a.generation + 1
			 WHERE a.end_lsn <> b.base_lsn OR a.next_log_id <> b.log_id
			    OR a.end_hash <> b.snapshot_hash OR a.end_chain <> b.base_chain}),
		'0', "$label: every end-log marker matches the next log");
	is($node->safe_psql($db, q{SELECT count(*) FROM synclog.doc}), '40', "$label: all documents are there");
}

my $log_pos = -s $node->logfile;
for my $case ([ 'restored_l', [ '-L', $listfile ] ], [ 'restored_j', [ '-j', '4' ] ])
{
	my ($db, $opts) = @$case;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	# pg_restore under its own application name (the test framework sets
	# PGAPPNAME for every program it runs; README: do not set it)
	local $ENV{PGAPPNAME};
	delete $ENV{PGAPPNAME};
	$node->command_ok([ 'pg_restore', @$opts, '-d', $node->connstr($db), $dumpdir ],
		"pg_restore @$opts");
	check_restored($db, $db);
}
ok($node->log_contains(qr/skipping database "restored_[lj]": synclog is paused/, $log_pos),
	'the worker visited a restoring database and left it alone');
is( $node->safe_psql('restored_l',
		q{SELECT paused FROM synclog.paused()}), 'f', 'no pause is left after pg_restore');
ok( $node->poll_query_until('restored_j',
		qq{SELECT sum(rotations) > $rot + 20 FROM synclog.stats}),
	'after the restore the worker rotates the due documents');
check_restored('restored_j', 'after the worker rotated');
$node->stop;

done_testing();
