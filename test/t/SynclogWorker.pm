# SynclogWorker.pm - for TAP tests of the background worker: the settings
# of a worker that works at once, and waiting for the launcher to finish
# rounds instead of sleeping and hoping it did.
#
# The launcher shows in pg_stat_activity, between rounds, "idle after round
# N, databases visited: M" (worker.c), and reports N only once the round's
# waits for its workers are over.  So once it shows N + 2, round N + 2 has
# started after the moment N was read: that round saw everything committed
# before, under any configuration reloaded before, and has finished with
# it.  A test that claims "the worker did nothing" waits for that first.
#
# Use from a test in test/t:  use FindBin; use lib $FindBin::Bin; use SynclogWorker;
package SynclogWorker;

use strict;
use warnings;
use Exporter 'import';
use Test::More;

our @EXPORT = qw(worker_conf launcher_rounds wait_two_rounds);

# postgresql.conf lines for a worker that runs a round every second,
# rotates a document after 5 entries and collects a retired log at once
# (unless a client acked in it within the hour).
sub worker_conf
{
	return q{
shared_preload_libraries = 'synclog'
synclog.naptime = 1
synclog.rotate_entries = 5
synclog.rotate_size = 0
synclog.rotate_age = 0
synclog.rotate_min_interval = 0
synclog.retention = 0
synclog.retention_max = 0
synclog.client_activity_window = '1h'
};
}

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
