# Several sessions append to one document while another rotates it again
# and again, and a reader follows the chain of logs the whole time.
#
# The reader fails on the first LSN that is not its last plus one, so an
# entry that became visible before an earlier one (LSN order differing from
# commit order), a gap, or an entry served from the wrong log all fail the
# test.  Afterwards every acknowledged append is there exactly once, every
# snapshot hash matches a recomputation, and the state equals a fold of all
# entries from scratch.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $writers = 4;
my $per_writer = 1000;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION synclog;
SELECT synclog.create_doc('hot');
CREATE TABLE stop_flag (stop boolean);

-- Follow the chain from the first log, committing between reads so that
-- every read sees what has committed since.
CREATE PROCEDURE follow(INOUT seen bigint, INOUT rotations int)
LANGUAGE plpgsql AS $$
DECLARE
	log text;
	pos bigint := 0;
	r record;
	got boolean;
BEGIN
	SELECT l.log_id INTO log FROM synclog.log l JOIN synclog.doc d USING (doc_id)
	 WHERE d.name = 'hot' AND l.generation = 1;
	seen := 0;
	rotations := 0;
	LOOP
		got := false;
		FOR r IN SELECT * FROM synclog.read('hot', log, pos, 50) LOOP
			got := true;
			IF r.kind = 'delta' THEN
				IF r.lsn <> pos + 1 THEN
					RAISE EXCEPTION 'reader at LSN % was served LSN %', pos, r.lsn;
				END IF;
				pos := r.lsn;
				seen := seen + 1;
			ELSE
				IF r.lsn <> pos THEN
					RAISE EXCEPTION 'marker at LSN % reached at LSN %', r.lsn, pos;
				END IF;
				log := r.next_log_id;
				rotations := rotations + 1;
			END IF;
		END LOOP;
		COMMIT;
		IF NOT got THEN
			EXIT WHEN EXISTS (SELECT FROM stop_flag)
				AND pos = (SELECT head_lsn FROM synclog.doc_head WHERE name = 'hot');
			PERFORM pg_sleep(0.005);
		END IF;
	END LOOP;
END $$;

CREATE PROCEDURE rotate_until_stopped(INOUT rotations int)
LANGUAGE plpgsql AS $$
BEGIN
	rotations := 0;
	WHILE NOT EXISTS (SELECT FROM stop_flag) LOOP
		IF synclog.compact('hot') IS NOT NULL THEN
			rotations := rotations + 1;
		END IF;
		COMMIT;
		PERFORM pg_sleep(0.005);
	END LOOP;
END $$;
});

my $script = $node->basedir . '/append.sql';
open my $fh, '>', $script or die "cannot write $script: $!";
print $fh "\\set k random(1, 300)\n"
  . "SELECT synclog.append('hot', ARRAY[int4send(:k)], "
  . "ARRAY[decode(md5(:client_id || ':' || :k), 'hex')]);\n";
close $fh;

my $connstr = $node->connstr('postgres');
my ($r_out, $r_err, $c_out, $c_err, $w_out, $w_err) = ('', '', '', '', '', '');
my $reader = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-c', 'CALL follow(0, 0)' ],
	'>', \$r_out, '2>', \$r_err);
my $rotator = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-c', 'CALL rotate_until_stopped(0)' ],
	'>', \$c_out, '2>', \$c_err);
my $ok = IPC::Run::run(
	[ 'pgbench', '-n', '-c', $writers, '-j', 2, '-t', $per_writer, '-f', $script, $connstr ],
	'>', \$w_out, '2>', \$w_err);
ok($ok, 'every writer finished without error') or diag($w_err);

$node->safe_psql('postgres', 'INSERT INTO stop_flag VALUES (true)');
$rotator->finish;
$reader->finish;
is($r_err, '', 'reader saw no gap and no out-of-order LSN');
is($c_err, '', 'rotator ran without error');

my $total = $writers * $per_writer;
my ($seen, $reader_rotations) = split /\|/, (split /\n/, $r_out)[0] // '';
my $rotations = (split /\n/, $c_out)[0] // 0;
cmp_ok($rotations, '>=', 5, "several rotations happened during the appends ($rotations)");
is($seen, $total, 'the reader saw every acknowledged append once');
is($reader_rotations, $rotations, 'the reader crossed every rotation by its marker');

is( $node->safe_psql('postgres', q{
		SELECT count(*) || ' ' || min(lsn) || ' ' || max(lsn)
		  FROM synclog.entry e JOIN synclog.doc d USING (doc_id) WHERE d.name = 'hot'}),
	"$total 1 $total",
	'LSNs 1..N with no gap and no duplicate');

is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM synclog.log a JOIN synclog.log b
		    ON b.doc_id = a.doc_id AND b.generation = a.generation + 1
		 WHERE a.end_lsn <> b.base_lsn OR a.next_log_id <> b.log_id OR a.end_hash <> b.snapshot_hash}),
	'0', 'the chain of logs is contiguous and every marker names its successor');

is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM synclog.log l
		 WHERE l.state <> 'collected' AND l.snapshot_hash <> synclog.recompute_hash('hot', l.log_id)}),
	'0', 'every snapshot hash matches a recomputation from its rows');

is( $node->safe_psql('postgres', q{
		SELECT coalesce(synclog.compact('hot'), 'nothing new') IS NOT NULL;
		WITH e AS (SELECT e.* FROM synclog.entry e JOIN synclog.doc x USING (doc_id) WHERE x.name = 'hot')
		SELECT (SELECT snapshot_hash FROM synclog.current_log('hot')) =
		       (SELECT synclog.state_hash(key, value) FROM (
		            SELECT DISTINCT ON (c.key) c.key, c.value
		              FROM e, synclog.decode_delta(e.delta) c ORDER BY c.key, e.lsn DESC) s)}),
	"t\nt", 'the final state equals a fold of every entry from scratch');

$node->stop;
done_testing();
