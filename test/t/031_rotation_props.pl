# The property test of the server's rotation (test/core/test_rotation.c):
# random logs appended through SQL, rotated in one pass and in several
# (held in the middle of a pass while more entries arrive), with
# collections in between; after every rotation the new log's hash, its
# recomputation, its items and its watermarks must equal the core's own
# forward fold of the same entries.  SLC_ROT_SEED / SLC_ROT_SEEDS replay a
# failing seed (the program prints how).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $top = $ENV{TESTDIR} or die "TESTDIR is not set";
my $build = `make -s -C '$top/test/core' test_rotation 2>&1`;
is($?, 0, 'test/core/test_rotation builds') or BAIL_OUT($build);

my $node = PostgreSQL::Test::Cluster->new('rotation_props');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION synclog');

my ($out, $err);
my $ok = IPC::Run::run([ "$top/test/core/test_rotation", $node->connstr('postgres') ],
	'>', \$out, '2>', \$err);
note($out);
ok($ok, 'every rotation equals the forward fold') or diag("$out\n$err");
like($out, qr/^rotation: \d+ passed, 0 failed$/m, 'all seeds passed');
# The shapes the held rotations are for actually happened.
like($out, qr/rotations by shape: \d+ one pass, [1-9]\d* held then a tail, [1-9]\d* with a second pass, [1-9]\d* with a second pass held then a tail/,
	'rotations held in pass 1, with a second pass, and held in the second pass');
is($node->safe_psql('postgres', 'SELECT count(*) FROM synclog.doc'), '0', 'the test dropped its documents');
$node->stop;
done_testing();
