# Access over real connections: login roles of each kind, per-document
# confinement, and a confinement granted or lifted in one session taking
# effect in another session that is already connected.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('access');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION synclog;
	CREATE ROLE app_reader LOGIN;
	CREATE ROLE app_writer LOGIN;
	CREATE ROLE app_admin LOGIN;
	CREATE ROLE tenant_a LOGIN;
	SELECT synclog.grant_role('app_reader', 'reader');
	SELECT synclog.grant_role('app_writer', 'writer');
	SELECT synclog.grant_role('app_admin', 'admin');
	SELECT synclog.grant_role('tenant_a', 'writer');
	SELECT synclog.create_doc('a/1');
	SELECT synclog.create_doc('b/1');
});

sub as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, extra_params => [ '-U', $role ]);
	return ($ret, $out, $err);
}

my ($ret, $out, $err) = as('app_writer',
	q{SELECT synclog.append('a/1', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])});
is($out, '1', 'a writer appends over its own connection');
($ret, $out, $err) = as('app_reader', q{SELECT head_lsn FROM synclog.current_log('a/1')});
is($out, '1', 'a reader sees it');
($ret, $out, $err) = as('app_reader',
	q{SELECT synclog.append('a/1', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])});
like($err, qr/permission denied for function append/, 'a reader cannot append');
($ret, $out, $err) = as('app_writer', q{SELECT synclog.compact('a/1')});
like($err, qr/permission denied for function compact/, 'a writer cannot compact');
($ret, $out, $err) = as('app_admin', q{SELECT synclog.compact('a/1') IS NOT NULL});
is($out, 't', 'an admin compacts');
($ret, $out, $err) = as('app_writer', q{SELECT count(*) FROM synclog.entry});
like($err, qr/permission denied for table entry/, 'no role reaches the tables');

# A session of tenant_a stays open while its confinement changes.
my $tenant = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'tenant_a' ]);
is($tenant->query_safe(q{SELECT synclog.append('b/1', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])}),
	'1', 'unconfined, tenant_a may write any document');
$node->safe_psql('postgres', q{SELECT synclog.grant_doc('tenant_a', 'a/%', 'write')});
my $res = $tenant->query(q{SELECT synclog.append('b/1', ARRAY['\x01']::bytea[], ARRAY['\x02']::bytea[])});
like($tenant->{stderr}, qr/permission denied for document "b\/1"/,
	'a confinement granted elsewhere applies at once to an open session');
$tenant->{stderr} = '';
$tenant->query(q{SELECT * FROM synclog.current_log('b/does-not-exist')});
like($tenant->{stderr}, qr/permission denied for document "b\/does-not-exist"/,
	'a missing document outside the confinement looks the same as an existing one');
$tenant->{stderr} = '';
is($tenant->query_safe(q{SELECT synclog.append('a/1', ARRAY['\x01']::bytea[], ARRAY['\x03']::bytea[])}),
	'2', 'inside its patterns it still writes');
$node->safe_psql('postgres', q{SELECT synclog.revoke_doc('tenant_a')});
is($tenant->query_safe(q{SELECT synclog.append('b/1', ARRAY['\x01']::bytea[], ARRAY['\x04']::bytea[])}),
	'2', 'lifting the confinement applies at once too');
$tenant->quit;

($ret, $out, $err) = as('app_admin', q{SELECT synclog.revoke_role('app_writer')});
like($err, qr/permission denied for function revoke_role/, 'only the owner hands out kinds');
$node->safe_psql('postgres', q{SELECT synclog.revoke_role('app_writer')});
($ret, $out, $err) = as('app_writer', q{SELECT head_lsn FROM synclog.current_log('a/1')});
like($err, qr/permission denied for schema synclog/, 'revoke_role takes everything back');

# A schema "synclog" that another role owned before the extension came
# would make synclog run its queries as that role: CREATE EXTENSION refuses
# it, and so does every function if the schema changes hands later.
$node->safe_psql('postgres', q{
	CREATE DATABASE squat;
	CREATE ROLE squatter LOGIN;
});
$node->safe_psql('squat', 'CREATE SCHEMA synclog AUTHORIZATION squatter');
($ret, $out, $err) = $node->psql('squat', 'CREATE EXTENSION synclog');
like($err, qr/schema "synclog" is owned by role squatter, not by the owner of extension "synclog"/,
	'CREATE EXTENSION refuses a schema of another role');
is($node->safe_psql('squat', q{SELECT count(*) FROM pg_extension WHERE extname = 'synclog'}), '0',
	'and installs nothing');
$node->safe_psql('squat', 'DROP SCHEMA synclog; CREATE EXTENSION synclog');
$node->safe_psql('squat', q{SELECT synclog.create_doc('s/1')});
$node->safe_psql('squat', 'ALTER SCHEMA synclog OWNER TO squatter');
($ret, $out, $err) = $node->psql('squat', q{SELECT * FROM synclog.current_log('s/1')});
like($err, qr/schema "synclog" is not owned by the owner of extension "synclog"/,
	'a schema handed to another role later is refused by every function');
($ret, $out, $err) = $node->psql('squat',
	q{SELECT synclog.append('s/1', ARRAY['\x01']::bytea[], ARRAY['\x01']::bytea[])});
like($err, qr/schema "synclog" is not owned by the owner of extension "synclog"/, 'appends too');

$node->stop;
done_testing();
