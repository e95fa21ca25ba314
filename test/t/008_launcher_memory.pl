# The launcher's memory stays flat however many rounds it runs.  The
# launcher lives as long as the server, so anything a round leaves behind
# (a string built in TopMemoryContext after a commit, a worker handle)
# adds up for months.
#
# Rounds are driven, not waited for: with synclog.naptime at an hour, the
# launcher runs a round only when a configuration reload wakes it (the
# SIGHUP handler sets the latch it sleeps on), and it shows how many rounds
# it has finished in pg_stat_activity ("idle after round N, ...").  A
# procedure reloads, waits for the round to finish, and reloads again;
# waking it during a round would not count, as the round's own waits for
# its workers absorb the wake-up.  Each round does real but small work: two
# databases with the extension, a worker in each, and every 100th round
# rotates a document (and collects and vacuums after it).
#
# Memory is read twice: pg_log_backend_memory_contexts() writes the
# launcher's context totals to the server log ("Grand total: N bytes ..."),
# and /proc/<pid>/status gives its private resident memory (RssAnon).  The
# figures after 100 rounds are the baseline; after 10,000 rounds the
# context total may exceed it by 64 kB at most.  A leak of one short
# string per database per round (the launcher's former
# psprintf-after-commit) grows it by about 1 MB over the run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $ROUNDS = 10_000;
my $WARMUP = 100;
my $CHUNK = 1_000;		# rounds per CALL, so that progress shows in the log
my $BOUND = 64 * 1024;

my $node = PostgreSQL::Test::Cluster->new('launcher_memory');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'synclog'
synclog.naptime = 3600
synclog.rotate_entries = 3
synclog.rotate_size = 0
synclog.rotate_age = 0
synclog.rotate_min_interval = 0
synclog.retention = 0
synclog.retention_max = 0
});
$node->start;

# Two databases with the extension (template0 and template1 are not
# visited), a due document in each.
$node->safe_psql('postgres', q{CREATE DATABASE app});
for my $db ('postgres', 'app')
{
	$node->safe_psql($db, q{
		CREATE EXTENSION synclog;
		SELECT synclog.create_doc('m1');
		SELECT synclog.append('m1', ARRAY[int4send(i)], ARRAY[int4send(i)])
		  FROM generate_series(1, 3) i;
	});
}

# launcher_round(min): the number of the launcher's last finished round once
# it is idle after round min or later.
$node->safe_psql('postgres', q{
CREATE FUNCTION launcher_round(min bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	r bigint;
	since timestamptz := clock_timestamp();
BEGIN
	LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT substring(query FROM '^idle after round (\d+),')::bigint INTO r
		  FROM pg_stat_activity
		 WHERE backend_type = 'synclog launcher' AND state = 'idle';
		IF r >= min THEN
			RETURN r;
		END IF;
		IF clock_timestamp() - since > interval '60 s' THEN
			RAISE EXCEPTION 'the launcher did not finish round %', min;
		END IF;
		PERFORM pg_sleep(0.001);
	END LOOP;
END $$;

-- Wake the launcher until it has finished round upto, and return how many
-- times it was woken; after every round whose number is a multiple of
-- append_every, m1 is made due again first.
CREATE PROCEDURE drive_launcher(upto bigint, append_every int, INOUT wakes int DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
	r bigint := launcher_round(0);
BEGIN
	WHILE r < upto LOOP
		wakes := wakes + 1;
		IF r % append_every = 0 THEN
			PERFORM synclog.append('m1', ARRAY[int4send(i)], ARRAY[int4send(r::int)])
			   FROM generate_series(1, 3) i;
			COMMIT;
		END IF;
		PERFORM pg_reload_conf();
		r := launcher_round(r + 1);
		COMMIT;
	END LOOP;
END $$;
});

my $launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'synclog launcher'});
like($launcher, qr/^\d+$/, 'the launcher runs');

sub rounds_done
{
	return $node->safe_psql('postgres', 'SELECT launcher_round(0)');
}

# The launcher's memory between rounds: its context grand total from the
# server log, and its RssAnon.  Asking for the contexts wakes the launcher:
# it logs them first thing, before that wake-up's round.
sub launcher_memory
{
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', 'SELECT launcher_round(0)');
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($launcher)");
	$node->wait_for_log(qr/\[$launcher\] LOG:  Grand total: \d+ bytes/, $offset);
	my $log = slurp_file($node->logfile, $offset);
	$log =~ /\[$launcher\] LOG:  Grand total: (\d+) bytes in (\d+) blocks; (\d+) free \((\d+) chunks\); (\d+) used/
	  or die "no grand total in the log";
	my %m = (total => $1, blocks => $2, used => $5);
	my $status = slurp_file("/proc/$launcher/status");
	$m{rss_anon} = $status =~ /^RssAnon:\s+(\d+) kB/m ? $1 * 1024 : -1;
	return \%m;
}

sub show
{
	my ($m) = @_;
	return sprintf('context total %d bytes in %d blocks, %d used; RssAnon %d kB',
		$m->{total}, $m->{blocks}, $m->{used}, $m->{rss_anon} / 1024);
}

$node->safe_psql('postgres', "CALL drive_launcher($WARMUP, 100)");
my $base = launcher_memory();
my $base_round = rounds_done();
note("after $base_round rounds: " . show($base));

my $t0 = time;
my $wakes = 0;
for (my $upto = $CHUNK; $upto <= $ROUNDS; $upto += $CHUNK)
{
	$wakes += $node->safe_psql('postgres', "CALL drive_launcher($upto, 100)");
	note(sprintf('after %d rounds (%.0f s): %s', rounds_done(), time - $t0,
		show(launcher_memory())));
}
my $elapsed = time - $t0;
my $done = rounds_done();
my $end = launcher_memory();
cmp_ok($done, '>=', $ROUNDS, "the launcher ran $done rounds");
note(sprintf('%d wake-ups for %d rounds in %.0f s (%.1f ms a round)',
	$wakes, $done - $base_round, $elapsed, 1000 * $elapsed / ($done - $base_round)));

# The work was real: each round visited both databases, and the document
# that went due after every 100th round was rotated each time.
like($node->safe_psql('postgres', q{
		SELECT launcher_round(0) \\g /dev/null
		SELECT query FROM pg_stat_activity WHERE backend_type = 'synclog launcher'}),
	qr/^idle after round \d+, databases visited: 2$/,
	'each round visits the two databases');
my ($batches, $gen, $left) = split /\|/, $node->safe_psql('postgres',
	q{SELECT head_lsn / 3, generation, active_entries FROM synclog.status WHERE doc = 'm1'});
cmp_ok($batches, '>', $ROUNDS / 200, "m1 went due $batches times");
is("$gen $left", ($batches + 1) . ' 0', '... and was rotated each time');
is($node->safe_psql('app', q{SELECT generation FROM synclog.status WHERE doc = 'm1'}),
	'2', 'the due document in the other database was rotated');

cmp_ok($end->{total} - $base->{total}, '<=', $BOUND,
	sprintf('memory flat over %d rounds: context total %+d bytes since round %d (%s)',
		$done - $base_round, $end->{total} - $base->{total}, $base_round, show($end)));
cmp_ok($end->{used} - $base->{used}, '<=', $BOUND, 'memory in use flat as well');
SKIP:
{
	skip 'no RssAnon in /proc/<pid>/status', 1 if $base->{rss_anon} < 0;
	# Looser: malloc may keep a freed block or two mapped.
	cmp_ok($end->{rss_anon} - $base->{rss_anon}, '<=', 4 * $BOUND,
		sprintf('private resident memory flat: RssAnon %+d kB',
			($end->{rss_anon} - $base->{rss_anon}) / 1024));
}

$node->stop;
done_testing();
