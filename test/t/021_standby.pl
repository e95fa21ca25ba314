# Scale-out reads: a streaming-replication hot standby serves every read
# function exactly as the primary does, and refuses every write with
# SQLSTATE 25006 (read-only transaction).
#
# The primary holds documents with several generations (one of them
# collected), client watermarks, deletions and a paged snapshot; part of it
# reaches the standby through the base backup and part through streaming.
# After wait_for_catchup, synclog.read (whole logs, pages, markers),
# current_log, snapshot (whole and paged), snapshot_info, snapshot_clients,
# recompute_hash, the codec and hash functions and the error codes a
# client acts on (SL001 to SL004) return on the standby exactly what they
# return on the primary, and a client walking the chain on the standby
# ends where the primary's head is.  A client polling current_log on the
# standby sees a rotation made on the primary.
use strict;
use warnings;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $t_start = time;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
synclog.retention = 0
});
$primary->start;

$primary->safe_psql('postgres', q{
CREATE EXTENSION synclog;
SELECT synclog.create_doc('notes');
SELECT synclog.create_doc('pages');
SELECT synclog.create_doc('empty');

-- notes: four generations, the first two collected.
SELECT synclog.append('notes', ARRAY[int4send(i % 5)], ARRAY[convert_to('v' || i, 'UTF8')], 'phone', i)
  FROM generate_series(1, 10) i;
SELECT synclog.compact('notes');
SELECT synclog.append('notes', ARRAY[int4send(1), int4send(2)], ARRAY[NULL, 'x'::bytea], 'laptop', 1);
SELECT synclog.compact('notes');
SELECT synclog.append('notes', ARRAY[int4send(3)], ARRAY['y'::bytea]);
SELECT synclog.compact('notes');
SELECT synclog.gc();
SELECT synclog.append('notes', ARRAY[int4send(4)], ARRAY['z'::bytea], 'phone', 11);

-- pages: a few hundred 100-byte pages, one rotation.
SELECT synclog.append('pages', ARRAY[int4send(i)], ARRAY[convert_to(repeat(chr(65 + i % 26), 100), 'UTF8')])
  FROM generate_series(1, 300) i;
SELECT synclog.compact('pages');

-- A client following a document the way a client does, from a log id.
CREATE FUNCTION walk(d text, start_log text, start_lsn bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	log text := start_log;
	pos bigint := start_lsn;
	r record;
	n int := 0;
	markers int := 0;
	moved boolean;
BEGIN
	LOOP
		moved := false;
		FOR r IN SELECT * FROM synclog.read(d, log, pos, 7) LOOP
			moved := true;
			IF r.kind = 'delta' THEN
				IF r.lsn <> pos + 1 THEN RAISE EXCEPTION 'gap at %', pos; END IF;
				pos := r.lsn;
				n := n + 1;
			ELSE
				IF r.snapshot_hash <> synclog.recompute_hash(d, r.next_log_id) THEN
					RAISE EXCEPTION 'marker hash differs from the snapshot of %', r.next_log_id;
				END IF;
				log := r.next_log_id;
				markers := markers + 1;
			END IF;
		END LOOP;
		EXIT WHEN NOT moved;
	END LOOP;
	RETURN format('entries=%s markers=%s at %s:%s', n, markers, log, pos);
END $$;

-- Run a statement, return its SQLSTATE (or 'ok').
CREATE FUNCTION sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

# More after the backup: it reaches the standby by streaming.
$primary->safe_psql('postgres', q{
SELECT synclog.append('notes', ARRAY[int4send(9)], ARRAY['after backup'::bytea], 'tablet', 1);
SELECT synclog.compact('notes');
SELECT synclog.append('notes', ARRAY[int4send(9)], ARRAY[NULL::bytea], 'tablet', 2);
SELECT synclog.append('pages', ARRAY[int4send(1)], ARRAY['p1'::bytea]);
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

# The same query on both nodes gives the same, non-empty, answer.
sub same
{
	my ($sql, $what) = @_;
	my $p = $primary->safe_psql('postgres', $sql);
	my $s = $standby->safe_psql('postgres', $sql);
	isnt($p, '', "$what: the primary answers");
	is($s, $p, "$what: the standby answers the same");
	return $p;
}

# Every log a client can hold, as (doc, generation, log_id, base_lsn, state).
my $logs = q{
	SELECT d.name AS doc, l.generation, l.log_id, l.base_lsn, l.state
	  FROM synclog.log l JOIN synclog.doc d USING (doc_id)};

same(q{SELECT d, c.* FROM unnest(ARRAY['notes', 'pages', 'empty']) d, synclog.current_log(d) c ORDER BY d},
	'current_log');
same("SELECT l.doc, l.generation, r.* FROM ($logs) l, synclog.read(l.doc, l.log_id, l.base_lsn) r
	   WHERE l.state <> 'collected' ORDER BY 1, 2, r.lsn, r.kind DESC",
	'read of every retained log, with its markers');
same("SELECT l.doc, l.generation, r.lsn, r.kind FROM ($logs) l, synclog.read(l.doc, l.log_id, l.base_lsn, 3, 40) r
	   WHERE l.state <> 'collected' ORDER BY 1, 2, r.lsn, r.kind DESC",
	'read in small pages (max_entries, max_bytes)');
same("SELECT l.doc, l.generation, s.* FROM ($logs) l, synclog.snapshot(l.doc, l.log_id) s
	   WHERE l.state <> 'collected' ORDER BY 1, 2, s.key",
	'snapshot of every retained log');
same("SELECT s.* FROM ($logs) l, synclog.snapshot(l.doc, l.log_id, int4send(100), 50) s
	   WHERE l.doc = 'pages' AND l.state = 'active'",
	'a snapshot page (after_key, max_rows)');
same("SELECT l.doc, l.generation, i.* FROM ($logs) l, synclog.snapshot_info(l.doc, l.log_id) i
	   WHERE l.state <> 'collected' ORDER BY 1, 2",
	'snapshot_info of every retained log');
same("SELECT l.doc, l.generation, c.* FROM ($logs) l, synclog.snapshot_clients(l.doc, l.log_id) c
	   WHERE l.state <> 'collected' ORDER BY 1, 2, c.client_id",
	'snapshot_clients of every retained log');
is( $standby->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE synclog.recompute_hash(l.doc, l.log_id) = i.snapshot_hash) = count(*) AND count(*) = 6
		   FROM ($logs) l, synclog.snapshot_info(l.doc, l.log_id) i WHERE l.state <> 'collected'"),
	't', 'recompute_hash on the standby matches the stored hash of each of the 6 retained logs');
same("SELECT l.doc, l.generation, synclog.recompute_hash(l.doc, l.log_id) FROM ($logs) l
	   WHERE l.state <> 'collected' ORDER BY 1, 2",
	'recompute_hash');
same(q{SELECT synclog.hash_combine(
			(SELECT synclog.state_hash(key, value) FROM synclog.snapshot('notes', (SELECT log_id FROM synclog.current_log('notes')))),
			(SELECT synclog.state_hash(client_id, client_seq, client_lsn)
			   FROM synclog.snapshot_clients('notes', (SELECT log_id FROM synclog.current_log('notes')))))},
	'state_hash aggregates over a download');
same(q{SELECT synclog.encode_delta(ARRAY['k1', 'k2']::bytea[], ARRAY['v1', NULL]::bytea[]),
			  (SELECT string_agg(key || '=' || coalesce(value::text, '-'), ',')
				 FROM synclog.decode_delta('\x0102000000020000006b31020000007631020000006b32ffffffff')),
			  synclog.channel('notes'), synclog.empty_hash(),
			  (synclog.hash_info((SELECT snapshot_hash FROM synclog.current_log('pages')))).*},
	'encode_delta, decode_delta, channel, empty_hash, hash_info');

# A client on the standby follows the chain from the oldest retained log.
my ($first_log, $first_base) = split /\|/, $primary->safe_psql('postgres',
	"SELECT log_id, base_lsn FROM ($logs) l WHERE doc = 'notes' AND state <> 'collected' ORDER BY generation LIMIT 1");
my $walk = same("SELECT walk('notes', '$first_log', $first_base)", 'a client walking the chain');
my $head = $primary->safe_psql('postgres',
	q{SELECT log_id || ':' || head_lsn FROM synclog.current_log('notes')});
like($walk, qr/at \Q$head\E$/, 'the walk ends at the primary\'s head');

# The errors a client acts on are the same on the standby.
my $collected = $primary->safe_psql('postgres',
	"SELECT log_id FROM ($logs) l WHERE doc = 'notes' AND state = 'collected' LIMIT 1");
my $active = $primary->safe_psql('postgres', q{SELECT log_id FROM synclog.current_log('notes')});
same(qq{SELECT sqlstate_of(\$\$SELECT synclog.read('nope', '$active', 0)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('notes', '00000000000000000000000000000000', 0)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('notes', '$collected', 0)\$\$),
			   sqlstate_of(\$\$SELECT synclog.snapshot('notes', '$collected')\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('notes', '$active', 1000000)\$\$),
			   sqlstate_of(\$\$SELECT synclog.current_log('nope')\$\$)},
	'SL001, SL002, SL003, SL004');
is( $standby->safe_psql('postgres', qq{SELECT sqlstate_of(\$\$SELECT synclog.read('nope', '$active', 0)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('notes', '00000000000000000000000000000000', 0)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('notes', '$collected', 0)\$\$),
			   sqlstate_of(\$\$SELECT synclog.snapshot('notes', '$collected')\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('notes', '$active', 1000000)\$\$),
			   sqlstate_of(\$\$SELECT synclog.current_log('nope')\$\$)}),
	'SL001|SL002|SL003|SL003|SL004|SL001', '... and they are the documented ones');

# Every write fails on the standby with a read-only error, and changes nothing.
my %writes = (
	'append'       => q{SELECT synclog.append('notes', ARRAY['k']::bytea[], ARRAY['v']::bytea[])},
	'append with a client id' => q{SELECT synclog.append('notes', ARRAY['k']::bytea[], ARRAY['v']::bytea[], 'phone', 99)},
	'append retry' => q{SELECT synclog.append('notes', ARRAY['k']::bytea[], ARRAY['v']::bytea[], 'phone', 1)},
	'append_delta' => q{SELECT synclog.append_delta('notes', '\x0100000000')},
	'compact'      => q{SELECT synclog.compact('notes')},
	'compact of a document with nothing new' => q{SELECT synclog.compact('empty')},
	'compact_due'  => q{SELECT synclog.compact_due()},
	'gc'           => q{SELECT synclog.gc()},
	'ack'          => qq{SELECT synclog.ack('notes', 'reader', '$active', (SELECT base_lsn FROM synclog.current_log('notes')))},
	'create_doc'   => q{SELECT synclog.create_doc('new')},
	'drop_doc'     => q{SELECT synclog.drop_doc('pages')},
	'set_policy'   => q{SELECT synclog.set_policy('notes', rotate_entries => 1)},
	'clear_policy' => q{SELECT synclog.clear_policy('notes')},
	'LISTEN (listen on the primary)' => q{LISTEN synclog_704c9df08ffe6a2d});
# synclog.append and append_delta write the heap directly (no SQL
# statement), so they make the executor's read-only check themselves.
for my $w (sort keys %writes)
{
	my ($ret, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\n$writes{$w}");
	isnt($ret, 0, "$w fails on the standby");
	like($err, qr/ERROR:  25006: cannot execute .* (in a read-only transaction|during recovery)/,
		"$w: SQLSTATE 25006 with a clear message");
}

# The same check on the primary, in a READ ONLY transaction.
for my $w ('append', 'append with a client id', 'append_delta', 'compact', 'ack', 'set_policy')
{
	my ($ret, $out, $err) = $primary->psql('postgres',
		"\\set VERBOSITY verbose\nBEGIN READ ONLY;\n$writes{$w};\nROLLBACK;");
	like($err, qr/ERROR:  25006: cannot execute .* in a read-only transaction/,
		"$w in a READ ONLY transaction on the primary: SQLSTATE 25006");
}
same(q{SELECT d.name, d.head_lsn, l.generation, l.state FROM synclog.doc_head d JOIN synclog.log l USING (doc_id)
		ORDER BY 1, 3}, 'after the refused writes, nothing changed');

# Topology: writes and rotations on the primary, a client polling the
# standby sees them.
my $old = $standby->safe_psql('postgres', q{SELECT log_id FROM synclog.current_log('pages')});
my $new = $primary->safe_psql('postgres', q{SELECT synclog.compact('pages')});
ok( $standby->poll_query_until('postgres',
		"SELECT log_id = '$new' FROM synclog.current_log('pages')"),
	'a client polling current_log on the standby sees a rotation made on the primary');
is( $standby->safe_psql('postgres',
		"SELECT kind || ':' || next_log_id FROM synclog.read('pages', '$old',
			(SELECT base_lsn FROM synclog.snapshot_info('pages', '$old'))) WHERE kind = 'end'"),
	"end:$new", '... and the marker of the old log leads there');

$standby->stop;
$primary->stop;
note(sprintf('runtime %.1f s', time - $t_start));
done_testing();
