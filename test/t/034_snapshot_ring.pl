# A snapshot larger than a quarter of shared_buffers reads its out-of-line
# values through a ring of buffers (kv_values.c), as PostgreSQL reads a
# large table in a sequential scan: its pages are the same as when read
# by hand from synclog.kv, and the download leaves most of shared_buffers
# to what was there (pg_buffercache counts the TOAST table's buffers,
# against reading the same values by hand).  A small snapshot of the same
# server reads the same way as before.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('snapshot_ring');
$node->init;
# 16 MB of buffers (2048): a snapshot over 4 MB takes the ring.
$node->append_conf('postgresql.conf', "shared_buffers = 16MB\n");
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{CREATE EXTENSION synclog; CREATE EXTENSION pg_buffercache;});
# 'big': 1,200 keys of 6 kB random bytes (about 7 MB, values out of line);
# two more rotations rewrite every 3rd and every 10th key, so values of
# three rotations interleave.  'small': 20 such keys (120 kB).
sql(q{
	CREATE FUNCTION rv(n int, seed int) RETURNS bytea LANGUAGE sql AS
	$$ SELECT decode(string_agg(md5((seed * 100003 + i)::text), ''), 'hex') FROM generate_series(1, n / 16) i $$;
	SELECT synclog.create_doc('big'), synclog.create_doc('small');
	SELECT count(synclog.append('big', ARRAY[int4send(r)], ARRAY[rv(6000, r)])) FROM generate_series(0, 1199) r;
	SELECT count(synclog.append('small', ARRAY[int4send(r)], ARRAY[rv(6000, r)])) FROM generate_series(0, 19) r;
	SELECT synclog.compact('big'), synclog.compact('small');
	SELECT count(synclog.append('big', ARRAY[int4send(r)], ARRAY[rv(6000, r + 3)])) FROM generate_series(0, 1199, 3) r;
	SELECT synclog.compact('big');
	SELECT count(synclog.append('big', ARRAY[int4send(r)], ARRAY[rv(6000, r + 10)])) FROM generate_series(0, 1199, 10) r;
	SELECT synclog.compact('big');
});

# The state read by hand, and by pages of 100 rows, as digests.
my $by_hand = q{
	SELECT md5(string_agg(md5(key) || md5(value), '' ORDER BY key)) FROM (
	  SELECT DISTINCT ON (key) key, kind, value FROM synclog.kv
	   WHERE doc_id = (SELECT doc_id FROM synclog.doc WHERE name = '%1$s') AND ns = 1
		 AND lsn <= (SELECT base_lsn FROM synclog.current_log('%1$s'))
	   ORDER BY key, lsn DESC) v WHERE kind <> 'd'};
my $paged = q{
	DO $$
	DECLARE after bytea := NULL; n int; acc text := ''; r record;
	BEGIN
		LOOP
			n := 0;
			FOR r IN SELECT key, value FROM synclog.snapshot('%1$s',
						(SELECT log_id FROM synclog.current_log('%1$s')), after, 100) LOOP
				acc := acc || md5(r.key) || md5(r.value); after := r.key; n := n + 1;
			END LOOP;
			EXIT WHEN n < 100;
		END LOOP;
		PERFORM set_config('ring.digest', md5(acc), false);
	END $$;
	SELECT current_setting('ring.digest')};
my $toast_buffers = q{
	SELECT count(*) FROM pg_buffercache b JOIN pg_class c ON b.relfilenode = pg_relation_filenode(c.oid)
	 WHERE c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'synclog.kv'::regclass)};

# Reading the big state by hand (PostgreSQL's own detoasting, no ring)
# fills shared_buffers with its TOAST pages; the snapshot leaves them to
# a few.
$node->restart;
my $want_big = sql(sprintf($by_hand, 'big'));
my $held_plain = sql($toast_buffers);
$node->restart;
is(sql(sprintf($paged, 'big')), $want_big, 'big: the snapshot\'s pages are the state read by hand');
my $held_ring = sql($toast_buffers);
cmp_ok($held_ring * 3, '<', $held_plain,
	"big: the download left $held_ring of the TOAST table's pages in shared_buffers, reading by hand $held_plain");
# Each page (call) has its own ring of 32 buffers (256 kB); 12 pages.
cmp_ok($held_ring, '<=', 12 * 40, 'big: about one ring per page');

# The small one (under a quarter of shared_buffers) reads as before.
$node->restart;
my $want_small = sql(sprintf($by_hand, 'small'));
$node->restart;
is(sql(sprintf($paged, 'small')), $want_small, 'small: the snapshot\'s pages are the state read by hand');
cmp_ok(sql($toast_buffers), '>', 0, 'small: its TOAST pages stay in shared_buffers');

$node->stop;
done_testing();
