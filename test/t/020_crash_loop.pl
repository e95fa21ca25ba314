# Crash loop: kill -9 of the postmaster and every backend in the middle of
# appends, of a rotation (held after its fold by synclog.debug_rotation_delay)
# and of a collection (gc done but not committed), five times over, with
# fsync and synchronous_commit on.
#
# Writers are psql sessions that append with a client id and consecutive
# client_seq and print "seq|lsn" for every append the server acknowledged.
# After each crash they resume at their last acknowledged seq + 1, so the
# first append of a round is often a retry of a mutation that committed but
# whose reply was lost: it must return the LSN it already has.
#
# After each recovery, for every document: the chain of logs is contiguous
# (every marker names its successor with the successor's hash), every
# retained snapshot hash equals a recomputation from its rows, a reader
# walking the chain from the oldest retained log sees LSNs gapless up to the
# head, and the current snapshot equals a fold from scratch (from the
# oldest retained snapshot, which for document d3 is the empty state of
# its first log, pinned by a client ack, so there it is a fold of every
# entry ever appended).  Every acknowledged append is there, at the LSN it
# was acknowledged with (or, if its log was collected since, folded into
# the oldest retained snapshot's client watermark).  No client mutation is
# stored twice.  The held rotation and the held collection left nothing
# behind.
use strict;
use warnings;
use IPC::Run;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $iterations = 5;
my $t_start = time;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', q{
fsync = on
synchronous_commit = on
restart_after_crash = off
max_connections = 40
synclog.retention = 0
synclog.retention_max = 0
synclog.client_activity_window = '1d'
});
$node->start;
# The rotation hook (synclog.debug_rotation_delay) exists only in test builds.
is($node->safe_psql('postgres', q{LOAD 'synclog'; SELECT count(*) FROM pg_settings WHERE name = 'synclog.debug_rotation_delay'}),
	'1', 'synclog is a test build')
  or BAIL_OUT('this test needs a test build: make SYNCLOG_TEST_HOOKS=1 install');

# writer => document; d1 has two writers and gets the held rotation, d2
# and d3 are rotated in a loop, d3 is never collected.
my %writer_doc = (w1 => 'd1', w2 => 'd1', w3 => 'd2', w4 => 'd3');
my @docs = qw(d1 d2 d3);

$node->safe_psql('postgres', q{
CREATE EXTENSION synclog;
SELECT synclog.create_doc(d) FROM unnest(ARRAY['d1', 'd2', 'd3']) d;
-- An active client in d3's first log: retention keeps it (retention_max = 0),
-- and, oldest first, every later log of d3.
SELECT synclog.ack('d3', 'pin', (SELECT log_id FROM synclog.current_log('d3')), 0);

CREATE TABLE acks (doc text, client_id text, client_seq bigint, lsn bigint);

-- Rotate d2 and d3 until the server dies.
CREATE PROCEDURE rotate_loop()
LANGUAGE plpgsql AS $$
BEGIN
	LOOP
		PERFORM synclog.compact('d2');
		COMMIT;
		PERFORM synclog.compact('d3');
		COMMIT;
		PERFORM pg_sleep(0.02);
	END LOOP;
END $$;

-- Everything a client and the DBA can check about one document.
CREATE FUNCTION check_doc(d text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	first_log text;
	first_base bigint;
	first_gen int;
	cur record;
	log text;
	pos bigint;
	r record;
	gapless boolean := true;
	logs int := 1;
	moved boolean;
	hashes_ok boolean;
	chain_ok boolean;
	entries_ok boolean;
	fold bytea;
BEGIN
	SELECT l.log_id, l.base_lsn, l.generation INTO first_log, first_base, first_gen
	  FROM synclog.log l JOIN synclog.doc x USING (doc_id)
	 WHERE x.name = d AND l.state <> 'collected' ORDER BY l.generation LIMIT 1;
	log := first_log;
	pos := first_base;
	LOOP
		moved := false;
		FOR r IN SELECT * FROM synclog.read(d, log, pos, 100000) LOOP
			moved := true;
			IF r.kind = 'delta' THEN
				IF r.lsn <> pos + 1 THEN gapless := false; END IF;
				pos := r.lsn;
			ELSE
				IF r.lsn <> pos OR r.snapshot_hash IS DISTINCT FROM
				   (SELECT snapshot_hash FROM synclog.snapshot_info(d, r.next_log_id)) THEN
					gapless := false;
				END IF;
				log := r.next_log_id;
				logs := logs + 1;
			END IF;
		END LOOP;
		EXIT WHEN NOT moved;
	END LOOP;
	SELECT * INTO cur FROM synclog.current_log(d);
	IF log <> cur.log_id OR pos <> cur.head_lsn THEN gapless := false; END IF;

	SELECT bool_and(l.snapshot_hash = synclog.recompute_hash(d, l.log_id)) INTO hashes_ok
	  FROM synclog.log l JOIN synclog.doc x USING (doc_id)
	 WHERE x.name = d AND l.state <> 'collected';

	SELECT count(*) = 0 INTO chain_ok
	  FROM synclog.log a JOIN synclog.doc x USING (doc_id)
	  JOIN synclog.log b ON b.doc_id = a.doc_id AND b.generation = a.generation + 1
	 WHERE x.name = d
	   AND (a.end_lsn <> b.base_lsn OR a.next_log_id <> b.log_id
			OR a.end_hash <> b.snapshot_hash OR a.state = 'active'
			OR (a.state = 'collected') <> (a.generation < first_gen));
	chain_ok := chain_ok AND (SELECT count(*) = 1 FROM synclog.log l JOIN synclog.doc x USING (doc_id)
							   WHERE x.name = d AND l.state = 'active');

	-- The retained logs' entries are all stored, once each, nothing beyond
	-- the head.  (Below the oldest retained log, gc decides what stays.)
	SELECT count(*) = cur.head_lsn - first_base
		   AND coalesce(max(e.lsn), first_base) = cur.head_lsn
	  INTO entries_ok
	  FROM synclog.entry e JOIN synclog.doc x USING (doc_id)
	 WHERE x.name = d AND e.lsn > first_base;

	WITH e AS (SELECT e.* FROM synclog.entry e JOIN synclog.doc x USING (doc_id)
				WHERE x.name = d AND e.lsn > first_base AND e.lsn <= cur.base_lsn),
	data AS (SELECT DISTINCT ON (key) key, value FROM (
				SELECT s.key, s.value, first_base AS lsn
				  FROM synclog.snapshot(d, first_log, NULL, 2147483647) s
				UNION ALL
				SELECT c.key, c.value, e.lsn FROM e, synclog.decode_delta(e.delta) c) u
			 ORDER BY key, lsn DESC),
	cl AS (SELECT DISTINCT ON (client_id) client_id, client_seq, client_lsn FROM (
				SELECT s.client_id, s.client_seq, s.client_lsn
				  FROM synclog.snapshot_clients(d, first_log) s
				UNION ALL
				SELECT e.client_id, e.client_seq, e.lsn FROM e WHERE e.client_id IS NOT NULL) u
		   ORDER BY client_id, client_lsn DESC)
	SELECT synclog.hash_combine((SELECT synclog.state_hash(key, value) FROM data),
								(SELECT synclog.state_hash(client_id, client_seq, client_lsn) FROM cl))
	  INTO fold;

	RETURN format('gapless=%s hashes_ok=%s chain_ok=%s entries_ok=%s fold_ok=%s (first generation %s, %s logs, head %s)',
				  gapless, hashes_ok, chain_ok, entries_ok, fold = cur.snapshot_hash,
				  first_gen, logs, cur.head_lsn);
END $$;

-- Acknowledged appends that are not where they were acknowledged: a
-- retained LSN must hold exactly that mutation; a collected one must be
-- covered by the client's watermark in the oldest retained snapshot.
CREATE FUNCTION missing_acks() RETURNS TABLE (doc text, client_id text, client_seq bigint, lsn bigint, why text)
LANGUAGE sql AS $$
	WITH o AS (SELECT DISTINCT ON (x.name) x.name, x.doc_id, x.head_lsn, l.log_id, l.base_lsn
				 FROM synclog.doc_head x JOIN synclog.log l USING (doc_id)
				WHERE l.state <> 'collected' ORDER BY x.name, l.generation)
	SELECT a.doc, a.client_id, a.client_seq, a.lsn,
		   CASE WHEN a.lsn > o.head_lsn THEN 'beyond head'
				WHEN a.lsn > o.base_lsn THEN 'entry differs or is missing'
				ELSE 'collected but not in the watermark' END
	  FROM acks a JOIN o ON o.name = a.doc
	 WHERE a.lsn > o.head_lsn
		OR (a.lsn > o.base_lsn AND NOT EXISTS (
				SELECT FROM synclog.entry e WHERE e.doc_id = o.doc_id AND e.lsn = a.lsn
				   AND e.client_id = a.client_id AND e.client_seq = a.client_seq))
		OR (a.lsn <= o.base_lsn AND NOT EXISTS (
				SELECT FROM synclog.snapshot_clients(o.name, o.log_id) w
				 WHERE w.client_id = a.client_id AND w.client_seq >= a.client_seq
				   AND w.client_lsn >= a.lsn))
$$;
});

my %next_seq = map { $_ => 1 } keys %writer_doc;
my %acked;    # "$w:$seq" => lsn, over all rounds
my $total_acks = 0;
my $lost_replies = 0;

sub writer_script
{
	my ($w, $from) = @_;
	my $doc = $writer_doc{$w};
	my $file = $node->basedir . "/$w.sql";
	open my $fh, '>', $file or die "cannot write $file: $!";
	for my $seq ($from .. $from + 20000)
	{
		# every 7th mutation deletes its key
		my $val = $seq % 7 == 0 ? 'NULL::bytea' : "int8send($seq)";
		print $fh "SELECT $seq, synclog.append('$doc', ARRAY[int4send("
		  . ($seq % 41)
		  . ")], ARRAY[$val], '$w', $seq);\n";
	}
	close $fh;
	return $file;
}

sub start_psql
{
	my ($out, $err, @args) = @_;
	return IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), @args ],
		'<', \undef, '>', $out, '2>', $err);
}

sub children_of
{
	my ($ppid) = @_;
	my @kids;
	opendir my $dh, '/proc' or die $!;
	for my $p (grep { /^\d+$/ } readdir $dh)
	{
		open my $fh, '<', "/proc/$p/stat" or next;
		my $stat = <$fh>;
		close $fh;
		push @kids, $p if defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

# The postmaster and all its children die at once: an immediate, unclean stop.
sub crash
{
	my $pm = $node->{_pid};
	my @kids = children_of($pm);
	$node->kill9;
	kill 'KILL', @kids;
	for my $p ($pm, @kids)
	{
		usleep(20_000) while kill 0, $p;
	}
}

sub wait_for
{
	my ($sql, $what) = @_;
	ok($node->poll_query_until('postgres', $sql), $what);
}

sub check_all
{
	my ($label) = @_;
	for my $d (@docs)
	{
		like($node->safe_psql('postgres', "SELECT check_doc('$d')"),
			qr/^gapless=t hashes_ok=t chain_ok=t entries_ok=t fold_ok=t /,
			"$label: $d is whole");
	}
	is($node->safe_psql('postgres', 'SELECT count(*) FROM missing_acks()'),
		'0', "$label: every acknowledged append is there")
	  or diag($node->safe_psql('postgres', 'SELECT * FROM missing_acks() LIMIT 20'));
	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM (
				SELECT client_seq <= lag(client_seq) OVER (PARTITION BY doc_id, client_id ORDER BY lsn) AS dup
				  FROM synclog.entry WHERE client_id IS NOT NULL) s WHERE dup}),
		'0', "$label: no client mutation stored twice or out of order");
}

for my $round (1 .. $iterations)
{
	my %out;
	my %err;
	my %h;

	my $gen_d1 = $node->safe_psql('postgres',
		q{SELECT generation FROM synclog.status WHERE doc = 'd1'});
	my $collected_before = $node->safe_psql('postgres',
		q{SELECT count(*) FROM synclog.log WHERE state = 'collected'});
	my $heads_before = $node->safe_psql('postgres',
		q{SELECT sum(head_lsn) FROM synclog.doc_head});

	for my $w (sort keys %writer_doc)
	{
		($out{$w}, $err{$w}) = ('', '');
		$h{$w} = start_psql(\$out{$w}, \$err{$w}, '-f', writer_script($w, $next_seq{$w}));
	}
	my ($rot_out, $rot_err, $hold_out, $hold_err, $gc_out, $gc_err) = ('') x 6;
	$h{rotator} = start_psql(\$rot_out, \$rot_err, '-c', 'CALL rotate_loop()');

	# Let the writers and the rotator get going.
	wait_for("SELECT sum(head_lsn) >= $heads_before + 300 FROM synclog.doc_head",
		"round $round: appends are flowing");
	wait_for(q{SELECT count(*) > 0 FROM synclog.log l JOIN synclog.doc d USING (doc_id)
				WHERE d.name = 'd2' AND l.state = 'retired'},
		"round $round: there are retired logs to collect");

	# A rotation of d1 held after its fold, with d1's document lock.
	$h{hold} = start_psql(\$hold_out, \$hold_err, '-c',
		"SET synclog.debug_rotation_delay = '60s'; SELECT synclog.compact('d1')");
	wait_for(q{SELECT count(*) = 2 FROM pg_stat_activity
				WHERE query LIKE '%append(''d1''%' AND wait_event_type = 'Lock'},
		"round $round: a rotation of d1 is held inside, d1's writers wait for it");

	# A collection done but not committed.
	$h{gc} = start_psql(\$gc_out, \$gc_err, '-c',
		'BEGIN', '-c', 'SELECT synclog.gc()', '-c', 'SELECT pg_sleep(60)');
	wait_for(q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'},
		"round $round: a collection is in progress");

	# d2 and d3 keep taking appends and rotations right up to the crash.
	my $h0 = $node->safe_psql('postgres', q{SELECT sum(head_lsn) FROM synclog.doc_head WHERE name <> 'd1'});
	wait_for("SELECT sum(head_lsn) >= $h0 + 20 FROM synclog.doc_head WHERE name <> 'd1'",
		"round $round: appends continue while the rotation and the collection are held");
	crash();

	$_->finish for values %h;
	my $round_acks = 0;
	for my $w (sort keys %writer_doc)
	{
		for my $line (split /\n/, $out{$w})
		{
			my ($seq, $lsn) = $line =~ /^(\d+)\|(\d+)$/ or die "unexpected output from $w: $line";
			die "$w acknowledged seq $seq out of order" if $seq != $next_seq{$w};
			$acked{"$w:$seq"} = $lsn;
			$next_seq{$w} = $seq + 1;
			$round_acks++;
		}
		like($err{$w}, qr/terminat|connection|server closed/i,
			"round $round: writer $w stopped because the server went away");
	}
	$total_acks += $round_acks;
	is($hold_out, '', "round $round: the held rotation never returned");
	chomp $gc_out;
	like($gc_out, qr/^[1-9]\d*$/, "round $round: the held collection had collected logs ($gc_out)");
	note("round $round: $round_acks appends acknowledged");

	$node->start;

	# Record this round's acknowledgements in the database.
	my $copy = $node->basedir . '/acks.tsv';
	open my $fh, '>', $copy or die $!;
	for my $k (sort keys %acked)
	{
		my ($w, $seq) = split /:/, $k;
		print $fh "$writer_doc{$w}\t$w\t$seq\t$acked{$k}\n";
	}
	close $fh;
	$node->safe_psql('postgres', "TRUNCATE acks; COPY acks FROM '$copy'");

	check_all("round $round, after recovery");
	# Mutations that committed although their reply never arrived: the
	# writer retries them first thing next round.
	for my $w (sort keys %writer_doc)
	{
		$lost_replies += $node->safe_psql('postgres',
			"SELECT count(*) FROM synclog.entry WHERE client_id = '$w' AND client_seq = $next_seq{$w}");
	}
	is($node->safe_psql('postgres', q{SELECT generation FROM synclog.status WHERE doc = 'd1'}),
		$gen_d1, "round $round: the held rotation of d1 left nothing behind");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM synclog.log WHERE state = 'collected'}),
		$collected_before, "round $round: the uncommitted collection was undone");

	# Move on as a DBA would: rotate everything, collect, check again.
	$node->safe_psql('postgres', q{
		SELECT synclog.compact(d) FROM unnest(ARRAY['d1', 'd2', 'd3']) d;
		SELECT synclog.gc();});
	check_all("round $round, after a rotation and a collection");
}

cmp_ok($total_acks, '>=', 1000, "enough appends were acknowledged over all rounds ($total_acks)");
note("mutations committed whose reply was lost (retried in the next round): $lost_replies");
cmp_ok($node->safe_psql('postgres',
		q{SELECT count(*) FROM synclog.log WHERE state = 'collected'}), '>', 0,
	'some logs were collected along the way');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id) WHERE d.name = 'd3' AND l.state = 'collected'}),
	'0', 'd3 was never collected, so its check was a fold of every entry');

# The checks themselves catch what they look for: a lost acknowledged
# append (at a retained LSN, beyond the head, and in a collected log), a
# stored snapshot hash that does not match the snapshot, and an entry gone
# from a log.
is( $node->safe_psql('postgres', q{
		BEGIN;
		INSERT INTO acks
		SELECT 'd2', 'w3', max(client_seq) + 1, max(lsn) FROM synclog.entry WHERE client_id = 'w3'
		UNION ALL SELECT 'd2', 'w3', 1, (SELECT head_lsn + 1 FROM synclog.doc_head WHERE name = 'd2')
		UNION ALL SELECT 'd2', 'w3', 1000000, 1;
		SELECT string_agg(why, ', ' ORDER BY why) FROM missing_acks();
		ROLLBACK;}),
	'beyond head, collected but not in the watermark, entry differs or is missing',
	'self-test: missing_acks reports lost appends');
like( $node->safe_psql('postgres', q{
		BEGIN;
		UPDATE synclog.log SET snapshot_hash = synclog.empty_hash()
		 WHERE log_id = (SELECT log_id FROM synclog.current_log('d3'));
		SELECT check_doc('d3');
		ROLLBACK;}),
	qr/hashes_ok=f .*fold_ok=f/, 'self-test: check_doc sees a snapshot that does not match its hash');
{
	# A gap is seen by the walk's own check or by synclog.read, which
	# refuses to serve a log with a hole in it (SQLSTATE XX001).
	my ($ret, $out, $err) = $node->psql('postgres', q{
		BEGIN;
		SELECT synclog.append('d2', '{}', '{}');
		SELECT synclog.append('d2', '{}', '{}');
		DELETE FROM synclog.entry WHERE lsn = (SELECT head_lsn - 1 FROM synclog.doc_head WHERE name = 'd2')
		   AND doc_id = (SELECT doc_id FROM synclog.doc WHERE name = 'd2');
		SELECT check_doc('d2');
		ROLLBACK;});
	ok($out =~ /^gapless=f .* entries_ok=f/m || $err =~ /has no entry at LSN/,
		'self-test: check_doc sees a gap');
}

$node->stop;
note(sprintf('runtime %.1f s', time - $t_start));
done_testing();
