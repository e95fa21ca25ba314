# Without the worker: pg_cron (Debian's postgresql-15-cron) schedules
# synclog.compact_due and synclog.gc, as the README recommends.  And a
# logical backup (pg_dump) carries the documents, not just the schema.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
synclog.rotate_entries = 3
synclog.rotate_min_interval = 0
synclog.retention = 0
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION synclog;
	SELECT synclog.create_doc('cron-doc');
	SELECT synclog.append('cron-doc', ARRAY[int4send(i)], ARRAY['\x01'::bytea]) FROM generate_series(1, 4) i;
	SELECT cron.schedule('synclog-compact', '* * * * *', 'SELECT synclog.compact_due(100)');
	SELECT cron.schedule('synclog-gc', '* * * * *', 'SELECT synclog.gc()');
	SELECT cron.schedule('synclog-vacuum', '* * * * *', 'VACUUM synclog.entry, synclog.kv');
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname LIKE 'synclog-%'}),
	'3', 'the README\'s three jobs are scheduled');

# pg_cron runs at most once a minute: allow for two runs.
$PostgreSQL::Test::Utils::timeout_default = 200;
ok( $node->poll_query_until('postgres',
		q{SELECT generation >= 2 FROM synclog.status WHERE doc = 'cron-doc'}),
	'the scheduled compact_due rotated the due document');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		   WHERE j.jobname = 'synclog-gc' AND d.status = 'succeeded'}),
	'the scheduled gc ran and succeeded');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		   WHERE j.jobname = 'synclog-vacuum' AND d.status = 'succeeded'}),
	'the scheduled VACUUM of synclog.entry and synclog.kv ran and succeeded');
ok( $node->poll_query_until('postgres',
		q{SELECT bool_and(vacuum_count > 0) FROM pg_stat_user_tables
		   WHERE schemaname = 'synclog' AND relname IN ('entry', 'kv')}),
	'both tables show the scheduled VACUUM');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		 WHERE j.jobname LIKE 'synclog-%' AND d.status = 'failed'}),
	'0', 'no scheduled run failed');

# Two more rotations by the schedule make the first log collectable.
$node->safe_psql('postgres', q{
	SELECT synclog.append('cron-doc', ARRAY['\x01'::bytea], ARRAY['\x02'::bytea]) FROM generate_series(1, 3);
	SELECT synclog.compact('cron-doc');
	SELECT synclog.append('cron-doc', ARRAY['\x01'::bytea], ARRAY['\x03'::bytea]) FROM generate_series(1, 3);});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) >= 1 FROM synclog.log l JOIN synclog.doc d USING (doc_id)
		   WHERE d.name = 'cron-doc' AND l.state = 'collected'}),
	'the scheduled gc collected an old log');

# pg_dump / restore into a new database keeps every document whole.
$node->safe_psql('postgres', q{
	SELECT synclog.create_doc('dumped');
	SELECT synclog.append('dumped', ARRAY[int4send(i)], ARRAY[sha256(int4send(i))], 'c1', i) FROM generate_series(1, 20) i;
	SELECT synclog.compact('dumped');
	SELECT synclog.append('dumped', ARRAY[int4send(1)], ARRAY['\xff'::bytea]);});
my $dump = $node->basedir . '/synclog.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres'), '--extension=synclog' ],
	'pg_dump of the synclog extension and its data');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
my $q = q{SELECT string_agg(doc || ':' || active_log || ':' || head_lsn || ':' || generation, ',' ORDER BY doc) FROM synclog.status};
is($node->safe_psql('restored', $q), $node->safe_psql('postgres', $q), 'documents, logs and positions survive');
$q = q{SELECT string_agg(encode(snapshot_hash, 'hex'), ',' ORDER BY log_id) FROM synclog.log WHERE state <> 'collected'};
is($node->safe_psql('restored', $q), $node->safe_psql('postgres', $q), 'snapshot hashes survive');
is( $node->safe_psql('restored', q{
		SELECT count(*) FROM synclog.log l JOIN synclog.doc d USING (doc_id)
		 WHERE l.state <> 'collected' AND l.snapshot_hash <> synclog.recompute_hash(d.name, l.log_id)}),
	'0', 'restored snapshots hash as before');
is( $node->safe_psql('restored', q{
		SELECT synclog.append('dumped', ARRAY['\x01'::bytea], ARRAY['\x01'::bytea], 'c1', 20);
		SELECT synclog.append('dumped', ARRAY['\x01'::bytea], ARRAY['\x01'::bytea]);
		SELECT synclog.create_doc('new-after-restore') IS NOT NULL;}),
	"20\n22\nt", 'the restored copy keeps LSNs, watermarks and ids going');

$node->stop;
done_testing();
