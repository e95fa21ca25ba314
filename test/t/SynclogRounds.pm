# SynclogRounds.pm - for TAP tests of the background worker: wait for the
# launcher to finish rounds, instead of sleeping and hoping it did.
#
# The launcher shows in pg_stat_activity, between rounds, "idle after round
# N, databases visited: M" (worker.c), and reports N only once the round's
# waits for its workers are over.  So once it shows N + 2, round N + 2 has
# started after the moment N was read: that round saw everything committed
# before, under any configuration reloaded before, and has finished with
# it.  A test that claims "the worker did nothing" waits for that first.
#
# Use from a test in test/t:  use FindBin; use lib $FindBin::Bin; use SynclogRounds;
package SynclogRounds;

use strict;
use warnings;
use Exporter 'import';
use Test::More;

our @EXPORT = qw(launcher_rounds wait_two_rounds);

# The number of rounds the launcher of $node has finished (0 before the
# first one).
sub launcher_rounds
{
	my ($node) = @_;
	my $activity = $node->safe_psql('postgres',
		q{SELECT query FROM pg_stat_activity WHERE backend_type = 'synclog launcher'});
	return $activity =~ /idle after round (\d+)/ ? $1 : 0;
}

# Wait until the launcher has finished two more rounds than now; one
# passing test ("the launcher finished round N").
sub wait_two_rounds
{
	my ($node) = @_;
	my $target = launcher_rounds($node) + 2;
	return ok(
		$node->poll_query_until('postgres', qq{
			SELECT coalesce(substring(query from 'idle after round (\\d+)')::int, 0) >= $target
			  FROM pg_stat_activity WHERE backend_type = 'synclog launcher'}),
		"the launcher finished round $target");
}

1;
