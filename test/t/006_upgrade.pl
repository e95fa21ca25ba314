# Upgrading a database that holds data from the released 0.1 to the
# version of this tree, the way a DBA does it: the server runs the 0.1
# library (built from the release commit) with documents, rotated and
# collected logs, client watermarks, policies, confinements and counters,
# and a 0.1 client follows a document.  Then the new library replaces the
# old one, the server restarts, and until ALTER EXTENSION synclog UPDATE
# runs the library refuses the old schema (the worker skips the database
# and says what to run).  After the update:
#  - every stored snapshot hash equals a recomputation, and every document
#    reads, appends, rotates and collects as before;
#  - the 0.1 client, and the new client in the 0.1 client's directory,
#    continue without a download;
#  - the schema equals a fresh install's (catalogs compared object by
#    object: columns, constraints, indexes, functions, views, privileges,
#    dump configuration).
#
# The old version is built from git (commit SYNCLOG_V01_COMMIT) into a
# private copy of the PostgreSQL installation, so the test needs the
# repository's history and writes nothing outside its temporary directory.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = $ENV{TESTDIR} or die "TESTDIR is not set";
my $v01 = $ENV{SYNCLOG_V01_COMMIT} // '15f0e74';
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub run_or_die
{
	my ($what, $cmd) = @_;
	my $out = `$cmd 2>&1`;
	die "$what failed ($cmd):\n$out" if $?;
	return $out;
}

# --- a private PostgreSQL installation with the 0.1 library ---------------
my $sys_bindir = run_or_die('pg_config', 'pg_config --bindir');
chomp $sys_bindir;
my $sys_pkglib = `pg_config --pkglibdir`;
chomp $sys_pkglib;
my $sys_share = `pg_config --sharedir`;
chomp $sys_share;
my $inc = `pg_config --includedir`;
chomp $inc;
(my $sys_libroot = $sys_bindir) =~ s{/bin$}{};    # /usr/lib/postgresql/15
my $ver = (split m{/}, $sys_libroot)[-1];
my $pg = "$tmp/pg";
make_path("$pg/lib/postgresql", "$pg/share/postgresql", "$pg/include");
run_or_die('copying PostgreSQL', "cp -a '$sys_libroot' '$pg/lib/postgresql/'");
run_or_die('copying PostgreSQL', "cp -a '$sys_share' '$pg/share/postgresql/'");
symlink($inc, "$pg/include/postgresql") or die "symlink: $!";
my $pgc = "$pg/lib/postgresql/$ver/bin/pg_config";
my $pkglib = run_or_die('pg_config', "'$pgc' --pkglibdir");
chomp $pkglib;
my $extdir = run_or_die('pg_config', "'$pgc' --sharedir");
chomp $extdir;
$extdir .= '/extension';
unlink glob("$extdir/synclog*"), "$pkglib/synclog.so";

my $old = "$tmp/synclog-0.1";
make_path($old);
run_or_die("git archive $v01 (the test needs the repository's history)",
	"git -c safe.directory='*' -C '$top' archive '$v01' | tar -x -C '$old'");
run_or_die('building 0.1', "make -C '$old' -s -j2 PG_CONFIG='$pgc' install");
ok(-f "$pkglib/synclog.so" && !-e "$extdir/synclog--0.1--0.2.sql",
	'0.1 built and installed into a private copy of PostgreSQL');

my $node = PostgreSQL::Test::Cluster->new('upgrade',
	install_path => "$pg/lib/postgresql/$ver");
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'synclog'
synclog.naptime = 1
synclog.worker_paused = on
synclog.retention = 0
synclog.retention_max = 0
synclog.rotate_min_interval = 0
});
$node->start;
my $dsn = $node->connstr('app');

sub sql { return $node->safe_psql('app', $_[0]); }

$node->safe_psql('postgres', 'CREATE DATABASE app');
sql(q{
	CREATE EXTENSION synclog;
	CREATE ROLE up_reader LOGIN;
	CREATE ROLE up_writer LOGIN;
	CREATE ROLE up_admin LOGIN;
	SELECT synclog.grant_role('up_reader', 'reader');
	SELECT synclog.grant_role('up_writer', 'writer');
	SELECT synclog.grant_role('up_admin', 'admin');
	SELECT synclog.grant_doc('up_writer', 'w/%', 'write');
	SELECT synclog.grant_doc('up_reader', 'w/%', 'read');
	SELECT synclog.create_doc(d) FROM unnest(ARRAY['w/1', 'w/2', 'x/1']) d;
	SELECT synclog.set_policy('w/2', rotate_entries => 7, auto_rotate => true);
	SELECT synclog.set_policy('x/1', auto_rotate => false);
});
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'synclog'}), '0.1',
	'the database runs 0.1');

# Several generations: the first logs are collected, later ones retired.
sub fill
{
	my ($round) = @_;
	sql(qq{
		SELECT synclog.append(d, ARRAY[convert_to('k' || (i % 13), 'UTF8')],
			ARRAY[CASE WHEN i % 11 = 0 THEN NULL
				 ELSE convert_to(d || ':$round:' || i, 'UTF8') END],
			'cl-' || (i % 3), $round * 1000 + i)
		  FROM unnest(ARRAY['w/1', 'w/2', 'x/1']) d, generate_series(1, 40) i;
	});
}
fill(1);
sql(q{SELECT synclog.compact(d) FROM unnest(ARRAY['w/1', 'w/2', 'x/1']) d});
fill(2);
sql(q{SELECT synclog.compact(d) FROM unnest(ARRAY['w/1', 'w/2', 'x/1']) d});
fill(3);
sql(q{SELECT synclog.compact(d) FROM unnest(ARRAY['w/1', 'w/2']) d});
cmp_ok(sql(q{SELECT synclog.gc()}), '>', 0, 'gc collected logs under 0.1');
fill(4);

# A 0.1 client follows w/1 and acks.
my $old_client = "$old/src/client/synclog-follow";
my $cdir = "$tmp/replica";
my $out = run_or_die('0.1 client',
	"'$old_client' --dsn '$dsn' --doc w/1 --dir '$cdir' --once --verify --quiet --client-id up-client");
like($out, qr/downloads=1 /, '0.1 client made its first download');
sql(q{SELECT synclog.compact('w/1')});
fill(5);
$out = run_or_die('0.1 client', "'$old_client' --dsn '$dsn' --doc w/1 --dir '$cdir' --once --quiet");
like($out, qr/switches_marker=1 .*downloads=0 /, '0.1 client switched by marker');
fill(6);

my $counters_before = sql(q{SELECT string_agg(format('%s %s %s %s %s', doc, rotations, logs_collected, marker_switches, downloads), ';' ORDER BY doc) FROM synclog.stats});
my $heads_before = sql(q{SELECT string_agg(format('%s %s %s', doc, active_log, head_lsn), ';' ORDER BY doc) FROM synclog.status});

# --- the new library, before the update -----------------------------------
$node->stop;
run_or_die('installing the new library',
	"cp '$sys_pkglib/synclog.so' '$pkglib/' && cp $sys_share/extension/synclog* '$extdir/'");
$node->append_conf('postgresql.conf', 'synclog.worker_paused = off');
$node->start;

my ($ret, $stdout, $stderr) = $node->psql('app', q{SELECT * FROM synclog.current_log('w/1')});
like($stderr, qr/extension "synclog" must be updated to version 0\.2.*\n.*version 0\.1.*\n.*ALTER EXTENSION synclog UPDATE/s,
	'the new library refuses the 0.1 schema and says what to run');
ok($node->wait_for_log(qr/skipping database "app": extension "synclog" must be updated/),
	'the worker skips the database and says why');
is(sql(q{SELECT string_agg(format('%s %s %s', doc, active_log, head_lsn), ';' ORDER BY doc) FROM synclog.status}),
	$heads_before, 'nothing was rotated or written before the update');

# --- the update -----------------------------------------------------------
sql(q{ALTER EXTENSION synclog UPDATE});
is(sql(q{SELECT extversion FROM pg_extension WHERE extname = 'synclog'}), '0.2',
	'ALTER EXTENSION synclog UPDATE reached 0.2');
is(sql(q{SELECT string_agg(format('%s %s %s %s %s', doc, rotations, logs_collected, marker_switches, downloads), ';' ORDER BY doc) FROM synclog.stats}),
	$counters_before, 'counters survived the update');
is(sql(q{SELECT string_agg(name || ':' || clients, ';' ORDER BY name) FROM synclog.doc}),
	'w/1:3;w/2:3;x/1:3', 'each document counts the clients it has watermarks of');
is(sql(q{SELECT string_agg(role::text || ' ' || pattern || ' ' || privilege, ';' ORDER BY role::text) FROM synclog.doc_grant}),
	'up_reader w/% read;up_writer w/% write', 'confinements name their roles');
is(sql(q{SELECT count(*) FILTER (WHERE owner IS NOT NULL) || ' ' || (count(*) > 0) FROM synclog.client_pos}), '0 true',
	'positions recorded under 0.1 have no owner yet');
is(sql(q{SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id)
		WHERE l.state <> 'collected'
		  AND synclog.recompute_hash(d.name, l.log_id) IS DISTINCT FROM l.snapshot_hash}),
	'0', 'every stored snapshot hash equals its recomputation');
is(sql(q{SELECT count(*) FROM synclog.log WHERE state <> 'collected'}) > 6 ? 1 : 0, 1,
	'several logs per document were checked');

# Range hashes (issue 11) of the logs kept under 0.1, made by the update:
# for every log not collected they sum to its snapshot hash, and the range
# pages of all its buckets hold as many items as the snapshot.
my $ranges_wrong = q{
	CREATE AGGREGATE pg_temp.hsum(bytea) (SFUNC = synclog.hash_combine, STYPE = bytea,
		INITCOND = '\x010000000000000000000000000000000000000000000000000000000000000000');
	SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id)
	 WHERE l.state <> 'collected'
	   AND ((SELECT pg_temp.hsum(h.hash) FROM synclog.range_hashes(d.name, l.log_id) h)
				IS DISTINCT FROM l.snapshot_hash
			OR (SELECT count(*) FROM synclog.range(d.name, l.log_id,
					ARRAY(SELECT generate_series(0, 4095)), NULL, NULL, 2147483647))
				<> (synclog.hash_info(l.snapshot_hash)).item_count)};
is(sql($ranges_wrong), '0', 'the update gave every log range hashes that sum to its snapshot hash');

# Chain values given to the entries stored under 0.1: per document, each is
# chain_next of the one before, from zero before the oldest stored entry;
# every log's base_chain (and a sealed log's end_chain) is the value at its
# base (end), or zero where that entry was collected; each entry is a group.
is(sql(q{WITH RECURSIVE e AS (
			SELECT doc_id, lsn, delta, client_id, client_seq, chain, group_lsn,
				   row_number() OVER (PARTITION BY doc_id ORDER BY lsn) AS n
			  FROM synclog.entry),
		c AS (SELECT doc_id, n, lsn, synclog.chain_next('\x00000000000000000000000000000000',
						 lsn, delta, client_id, client_seq) AS want, chain, group_lsn
				FROM e WHERE n = 1
			  UNION ALL
			  SELECT e.doc_id, e.n, e.lsn,
					 synclog.chain_next(c.want, e.lsn, e.delta, e.client_id, e.client_seq),
					 e.chain, e.group_lsn
				FROM c JOIN e ON e.doc_id = c.doc_id AND e.n = c.n + 1)
		SELECT count(*) > 100 AND bool_and(want = chain AND group_lsn IS NULL) FROM c}),
	't', 'the entries stored under 0.1 got consistent chain values, one group each');
is(sql(q{SELECT count(*) FROM synclog.log l
		WHERE l.state <> 'collected' AND (
			l.base_chain IS DISTINCT FROM coalesce((SELECT chain FROM synclog.entry e
				WHERE e.doc_id = l.doc_id AND e.lsn <= l.base_lsn ORDER BY lsn DESC LIMIT 1),
				'\x00000000000000000000000000000000')
			OR (l.end_lsn IS NULL) <> (l.end_chain IS NULL)
			OR l.end_chain IS DISTINCT FROM (SELECT chain FROM synclog.entry e
				WHERE e.doc_id = l.doc_id AND e.lsn = l.end_lsn))}),
	'0', 'every log\'s base and end chain values match its entries');

my $w2_rotations = sql(q{SELECT rotations FROM synclog.stats WHERE doc = 'w/2'});

# Appends (also an idempotent retry of a 0.1 client seq), rotation, gc.
my $head = sql(q{SELECT head_lsn FROM synclog.current_log('w/1')});
my $seq_dup = sql(q{SELECT synclog.append('w/1', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[], 'cl-1', 6001)});
ok($seq_dup <= $head && sql(q{SELECT head_lsn FROM synclog.current_log('w/1')}) == $head,
	'a retry of a seq appended under 0.1 appends nothing and returns a recorded LSN');
fill(7);
isnt(sql(q{SELECT synclog.compact('w/1')}), '', 'rotation after the update');
ok($node->poll_query_until('app',
		qq{SELECT rotations > $w2_rotations FROM synclog.stats WHERE doc = 'w/2'}),
	'the worker rotates a due document after the update');
sql(q{SELECT synclog.gc()});
is(sql(q{SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id)
		WHERE l.state <> 'collected'
		  AND synclog.recompute_hash(d.name, l.log_id) IS DISTINCT FROM l.snapshot_hash}),
	'0', 'hashes still hold after rotations and gc');
is(sql($ranges_wrong), '0', 'and so do the range hashes');
# A version 2 reader from the base of the oldest log left reads every log
# to its head, each position verified.
is(sql(q{DO $$
		DECLARE
			l record; r record; pos bigint; ch bytea; log text; n int := 0;
		BEGIN
			SELECT log_id, base_lsn INTO l FROM synclog.log JOIN synclog.doc d USING (doc_id)
			 WHERE d.name = 'w/1' AND state <> 'collected' ORDER BY generation LIMIT 1;
			log := l.log_id; pos := l.base_lsn; ch := synclog.base_chain('w/1', log);
			LOOP
				n := 0;
				FOR r IN SELECT * FROM synclog.read2('w/1', log, pos, ch, 7) LOOP
					n := n + 1;
					IF r.kind = 'end' THEN log := r.next_log_id; EXIT; END IF;
					IF synclog.chain_next(ch, r.lsn, r.delta, r.client_id, r.client_seq) <> r.chain THEN
						RAISE EXCEPTION 'chain mismatch at %', r.lsn;
					END IF;
					pos := r.lsn; ch := r.chain;
				END LOOP;
				EXIT WHEN n = 0;
			END LOOP;
			IF pos <> (SELECT head_lsn FROM synclog.current_log('w/1')) THEN
				RAISE EXCEPTION 'stopped at %', pos;
			END IF;
		END $$; SELECT 'read'}),
	'read', 'a version 2 reader crosses every log left, verifying each chain value');
# The 0.1 client continues, then the new client takes over its directory.
$out = run_or_die('0.1 client after the update',
	"'$old_client' --dsn '$dsn' --doc w/1 --dir '$cdir' --once --verify --quiet");
like($out, qr/downloads=0 /, 'the 0.1 client continues after the update without a download');
is(sql(q{SELECT owner::text FROM synclog.client_pos ORDER BY acked_at DESC LIMIT 1}), 'postgres',
	'its next ack claimed the position it acked');
fill(8);
sql(q{SELECT synclog.compact('w/1')});
$out = run_or_die('new client in the 0.1 directory',
	"'$top/src/client/synclog-follow' --dsn '$dsn' --doc w/1 --dir '$cdir' --once --verify --quiet");
like($out, qr/switches_marker=1 .*downloads=0 /,
	'the new client continues in the 0.1 directory by marker, without a download');

# --- the schema equals a fresh install's -----------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', q{
	CREATE EXTENSION synclog;
	SELECT synclog.grant_role('up_reader', 'reader');
	SELECT synclog.grant_role('up_writer', 'writer');
	SELECT synclog.grant_role('up_admin', 'admin');
});
my $describe = q{
WITH ext AS (SELECT oid, extconfig FROM pg_extension WHERE extname = 'synclog'),
members AS (
  SELECT d.classid, d.objid FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'object ' || pg_describe_object(classid, objid, 0) AS line FROM members
  UNION ALL
  SELECT format('column %s.%s %s %s %s %s', c.relname, a.attname,
         format_type(a.atttypid, a.atttypmod), a.attnotnull,
         coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), a.attidentity::text || a.attstorage::text)
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
   WHERE c.relnamespace = 'synclog'::regnamespace
  UNION ALL
  SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'synclog'::regnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace = 'synclog'::regnamespace
  UNION ALL
  SELECT format('relation %s %s %s', c.oid::regclass, c.relkind,
				(SELECT coalesce(string_agg(a::text, ',' ORDER BY a::text), '') FROM unnest(c.relacl) a))
    FROM pg_class c WHERE c.relnamespace = 'synclog'::regnamespace
  UNION ALL
  SELECT format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid))
    FROM pg_class c WHERE c.relnamespace = 'synclog'::regnamespace AND c.relkind = 'v'
  UNION ALL
  SELECT format('function %s %s %s', p.oid::regprocedure,
				(SELECT coalesce(string_agg(a::text, ',' ORDER BY a::text), '') FROM unnest(p.proacl) a),
         CASE WHEN p.prokind = 'a' THEN '' ELSE pg_get_functiondef(p.oid) END)
    FROM pg_proc p WHERE p.pronamespace = 'synclog'::regnamespace
  UNION ALL
  SELECT 'schema acl ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'synclog'
  UNION ALL
  SELECT 'dump config ' || coalesce((SELECT string_agg(x::regclass::text, ',' ORDER BY x::regclass::text)
                                       FROM ext, unnest(ext.extconfig) x), '')
) t};
my $upgraded = $node->safe_psql('app', $describe);
my $fresh = $node->safe_psql('fresh', $describe);
is($upgraded, $fresh, 'the upgraded schema equals a fresh install\'s');
cmp_ok(length($fresh), '>', 5000, 'the comparison saw the whole schema');

$node->stop;
done_testing();
