# Clients ahead of the server.  A base backup (pg_basebackup, with WAL) is
# taken; the original server goes on appending and rotating; clients follow
# it past the backup; then the server is lost and restored from the backup.
#
# A client whose position is beyond the restored log's end gets SL004 from
# synclog.read (and from ack); a client in a log created after the backup
# gets SL002; a client of a document created after the backup gets SL001.
# Each recovers the documented way: current_log, a paged snapshot download
# whose hash (state_hash aggregates) equals the snapshot hash and
# recompute_hash, then the log from the snapshot on; its state then equals
# the server's.  A client that is not beyond the restored head cannot get
# SL004: it is served the restored server's different entries at the LSNs
# it had already seen, and finds out at the next end-log marker, whose
# hash does not match its state.  Log ids issued by the restored server
# differ from every log id the original server ever issued, including the
# ones issued after the backup.
use strict;
use warnings;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $t_start = time;

my $orig = PostgreSQL::Test::Cluster->new('orig');
$orig->init(allows_streaming => 1);
$orig->start;

my %seen_ids;    # every log id the original server issued
sub collect_ids
{
	my ($node, $set) = @_;
	$set->{$_} = 1
	  for split /\n/, $node->safe_psql('postgres', 'SELECT log_id FROM synclog.log');
}

$orig->safe_psql('postgres', q{
CREATE EXTENSION synclog;
SELECT synclog.create_doc('a');
SELECT synclog.append('a', ARRAY[int4send(i % 40)], ARRAY[int8send(i)], 'phone', i)
  FROM generate_series(1, 100) i;
SELECT synclog.compact('a');
SELECT synclog.append('a', ARRAY[int4send(i % 40)], ARRAY[CASE WHEN i % 3 = 0 THEN NULL ELSE int8send(i * 10) END])
  FROM generate_series(101, 110) i;

-- Run a statement, return its SQLSTATE (or 'ok').
CREATE FUNCTION sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;

-- What a client does to start over: find the current log, download its
-- snapshot in pages of 7 rows, check the download against the snapshot
-- hash, then read the log from the snapshot to its head and apply it.
-- The client's state is kept in client_data / client_wm.
CREATE TABLE client_data (key bytea PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE client_wm (client_id text PRIMARY KEY, client_seq bigint, client_lsn bigint);

CREATE FUNCTION client_apply(d text, log text, after bigint, max_entries int DEFAULT 100000)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	r record;
	c record;
	pos bigint := after;
BEGIN
	FOR r IN SELECT * FROM synclog.read(d, log, after, max_entries) WHERE kind = 'delta' ORDER BY lsn LOOP
		IF r.lsn <> pos + 1 THEN RAISE EXCEPTION 'gap at %', pos; END IF;
		pos := r.lsn;
		FOR c IN SELECT * FROM synclog.decode_delta(r.delta) LOOP
			DELETE FROM client_data WHERE key = c.key;
			IF c.value IS NOT NULL THEN
				INSERT INTO client_data VALUES (c.key, c.value);
			END IF;
		END LOOP;
		IF r.client_id IS NOT NULL THEN
			DELETE FROM client_wm WHERE client_id = r.client_id;
			INSERT INTO client_wm VALUES (r.client_id, r.client_seq, r.lsn);
		END IF;
	END LOOP;
	RETURN pos;
END $$;

CREATE FUNCTION client_hash() RETURNS bytea LANGUAGE sql AS $$
	SELECT synclog.hash_combine((SELECT synclog.state_hash(key, value) FROM client_data),
								(SELECT synclog.state_hash(client_id, client_seq, client_lsn) FROM client_wm))
$$;

CREATE FUNCTION client_download(d text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	cur record;
	n int;
	pages int := 0;
	download_ok boolean;
	pos bigint;
BEGIN
	TRUNCATE client_data, client_wm;
	SELECT * INTO cur FROM synclog.current_log(d);
	LOOP
		INSERT INTO client_data
		SELECT key, value FROM synclog.snapshot(d, cur.log_id, (SELECT key FROM client_data ORDER BY key DESC LIMIT 1), 7);
		GET DIAGNOSTICS n = ROW_COUNT;
		pages := pages + 1;
		EXIT WHEN n < 7;
	END LOOP;
	INSERT INTO client_wm SELECT * FROM synclog.snapshot_clients(d, cur.log_id);
	download_ok := client_hash() = cur.snapshot_hash
				   AND client_hash() = synclog.recompute_hash(d, cur.log_id);
	pos := client_apply(d, cur.log_id, cur.base_lsn);
	RETURN format('pages>1=%s download_ok=%s at_head=%s', pages > 1, download_ok, pos = cur.head_lsn);
END $$;
});

# The base backup: document a at LSN 110, in its second log.
my ($bk_log, $bk_head) = split /\|/, $orig->safe_psql('postgres',
	q{SELECT log_id, head_lsn FROM synclog.current_log('a')});
is($bk_head, '110', 'document a is at LSN 110 when the backup is taken');
$orig->backup('bk', backup_options => [ '-X', 'stream' ]);    # pg_basebackup with its WAL

# The original server goes on.  Client "mid" follows it to LSN 115 and keeps
# its state; client "far" follows it into a log created after the backup;
# client "new" follows a document created after the backup.
$orig->safe_psql('postgres', q{
SELECT synclog.append('a', ARRAY[int4send(i % 40)], ARRAY[int8send(-i)], 'laptop', i)
  FROM generate_series(111, 125) i;
});
my $mid_lsn = 115;
# "mid"'s state at LSN 115, as the original server served it.
my $mid_state = $orig->basedir . '/mid_state.tsv';
my $mid_wm = $orig->basedir . '/mid_wm.tsv';
is( $orig->safe_psql('postgres', qq{
		TRUNCATE client_data, client_wm;
		INSERT INTO client_data SELECT key, value FROM synclog.snapshot('a', '$bk_log');
		INSERT INTO client_wm SELECT * FROM synclog.snapshot_clients('a', '$bk_log');
		SELECT client_apply('a', '$bk_log', 100, 15);
		COPY client_data TO '$mid_state';
		COPY client_wm TO '$mid_wm';}),
	$mid_lsn, 'client mid reads up to LSN 115 on the original server');

my $far_log = $orig->safe_psql('postgres', q{SELECT synclog.compact('a')});
$orig->safe_psql('postgres', q{
SELECT synclog.append('a', ARRAY[int4send(1)], ARRAY['after the backup'::bytea], 'phone', 101);
SELECT synclog.compact('a');
SELECT synclog.append('a', ARRAY[int4send(2)], ARRAY['more'::bytea]);
SELECT synclog.create_doc('new');
SELECT synclog.append('new', ARRAY['k']::bytea[], ARRAY['v']::bytea[]);
});
my $far_lsn = 126;
my $new_log = $orig->safe_psql('postgres', q{SELECT log_id FROM synclog.current_log('new')});
my $orig_head = $orig->safe_psql('postgres', q{SELECT head_lsn FROM synclog.current_log('a')});
is($orig_head, '127', 'the original server went on to LSN 127, past the backup');
is( $orig->safe_psql('postgres', qq{
		SELECT sqlstate_of(\$\$SELECT synclog.read('a', '$bk_log', $mid_lsn)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('a', '$far_log', $far_lsn)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('new', '$new_log', 1)\$\$)}),
	'ok|ok|ok', 'on the original server the three clients are fine');
collect_ids($orig, \%seen_ids);
cmp_ok(scalar(keys %seen_ids), '==', 5, 'the original server issued 5 log ids');
$orig->stop;

# The restore.
my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($orig, 'bk');
$restored->start;
my %at_restore;
collect_ids($restored, \%at_restore);
is($restored->safe_psql('postgres', q{SELECT log_id || '|' || head_lsn FROM synclog.current_log('a')}),
	"$bk_log|$bk_head", 'the restored server is where the backup was');

# The clients come back.
is( $restored->safe_psql('postgres', qq{
		SELECT sqlstate_of(\$\$SELECT synclog.read('a', '$bk_log', $mid_lsn)\$\$),
			   sqlstate_of(\$\$SELECT synclog.ack('a', 'mid', '$bk_log', $mid_lsn)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('a', '$far_log', $far_lsn)\$\$),
			   sqlstate_of(\$\$SELECT synclog.snapshot('a', '$far_log')\$\$),
			   sqlstate_of(\$\$SELECT synclog.ack('a', 'far', '$far_log', $far_lsn)\$\$),
			   sqlstate_of(\$\$SELECT synclog.read('new', '$new_log', 1)\$\$)}),
	'SL004|SL004|SL002|SL002|SL002|SL001',
	'client beyond the end: SL004 (read, ack); client in a log issued after the backup: SL002; document created after the backup: SL001');

# The same client "mid" coming back later, when the restored server has
# taken new, different appends at LSNs 111 to 120: it is no longer beyond
# the head, so nothing tells it at once.  It is served LSNs 116 to 120 and
# finds out at the marker: its state does not hash to the marker's hash,
# so it downloads.
$restored->safe_psql('postgres', qq{
	TRUNCATE client_data, client_wm;
	SELECT synclog.append('a', ARRAY[int4send(i % 40)], ARRAY['restored'::bytea], 'tablet', i)
	  FROM generate_series(1, 10) i;
	SELECT synclog.compact('a');
});
$restored->safe_psql('postgres', qq{COPY client_data FROM '$mid_state'; COPY client_wm FROM '$mid_wm';});
my $gen2_end = $restored->safe_psql('postgres',
	qq{SELECT end_lsn FROM synclog.log WHERE log_id = '$bk_log'});
cmp_ok($gen2_end, '>', $mid_lsn, 'the log mid is in now ends beyond its position');
is( $restored->safe_psql('postgres', qq{
		SELECT client_apply('a', '$bk_log', $mid_lsn) = (SELECT end_lsn FROM synclog.log WHERE log_id = '$bk_log')
		   AND client_hash() <> (SELECT snapshot_hash FROM synclog.read('a', '$bk_log', (SELECT end_lsn FROM synclog.log WHERE log_id = '$bk_log')) WHERE kind = 'end')}),
	't', 'a client that was not beyond the head reads on without an error, and the marker hash tells it to download');
like($restored->safe_psql('postgres', q{SELECT client_download('a')}),
	qr/^pages>1=t download_ok=t at_head=t$/, '... which it does');

# The clients that got SL004 or SL002 recover through current_log and the
# snapshot, then follow the server as it goes on.
like($restored->safe_psql('postgres', q{SELECT client_download('a')}),
	qr/^pages>1=t download_ok=t at_head=t$/,
	'a client downloads the snapshot in pages, its hash matches, and it reads on to the head');
my ($cl_log, $cl_pos) = split /\|/, $restored->safe_psql('postgres',
	q{SELECT log_id, head_lsn FROM synclog.current_log('a')});
$restored->safe_psql('postgres', q{
	SELECT synclog.append('a', ARRAY[int4send(i)], ARRAY[NULL::bytea], 'phone', 200 + i) FROM generate_series(1, 5) i;
	SELECT synclog.append('a', ARRAY[int4send(7)], ARRAY['seven'::bytea]);
});
is($restored->safe_psql('postgres', qq{SELECT client_apply('a', '$cl_log', $cl_pos)}),
	$cl_pos + 6, 'it reads the new entries');
my $new_after = $restored->safe_psql('postgres', q{SELECT synclog.compact('a')});
is( $restored->safe_psql('postgres',
		qq{SELECT client_hash() = snapshot_hash AND snapshot_hash = synclog.recompute_hash('a', '$new_after')
		     FROM synclog.snapshot_info('a', '$new_after')}),
	't', 'its state hashes to the state the server then seals');
is( $restored->safe_psql('postgres', qq{
		SELECT sqlstate_of(\$\$SELECT synclog.ack('a', 'far', '$cl_log', @{[$cl_pos + 6]})\$\$)}),
	'ok', 'and it acks its new position');

# Log ids issued after the restore: for rotations of a, documents created
# again under the old names, and new ones.  None was ever issued before.
my %after;
$restored->safe_psql('postgres', q{
	SELECT synclog.append('a', ARRAY['x']::bytea[], ARRAY[int4send(i)]), synclog.compact('a')
	  FROM generate_series(1, 20) i;
	SELECT synclog.create_doc('new');
	SELECT synclog.create_doc('d' || i) FROM generate_series(1, 20) i;
});
collect_ids($restored, \%after);
my @fresh = grep { !$at_restore{$_} } keys %after;
cmp_ok(scalar(@fresh), '>=', 40, 'the restored server issued many log ids (' . scalar(@fresh) . ')');
is(join(',', grep { $seen_ids{$_} } @fresh), '',
	'none of them equals a log id the original server issued, before or after the backup');
ok(!(grep { !/^[0-9a-f]{32}$/ } @fresh), 'all are 32 hex digits');
is( $restored->safe_psql('postgres', qq{
		SELECT sqlstate_of(\$\$SELECT synclog.read('new', '$new_log', 0)\$\$)}),
	'SL002', 'the document created again under an old name does not know the old one\'s log');

$restored->stop;
note(sprintf('runtime %.1f s', time - $t_start));
done_testing();
