# test/t/SynclogClientTest.pm - what the TAP tests of the reference client
# share: a server with synclog preloaded and the worker's settings given,
# processes started with their output in a file, and waiting for lines of
# that output.
#
# Owns: sl_client_node, sl_spawn, sl_follow, sl_stop, sl_wait, sl_count_lines,
# sl_wait_lines,
# and killing what it started when the test ends.
# Must never: kill a process it did not start.
package SynclogClientTest;

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(sl_client_node sl_spawn sl_follow sl_stop sl_wait sl_count_lines sl_wait_lines);

# every process started here, killed at the end if still there
my %started;

END
{
	kill 'KILL', grep { kill 0, $_ } keys %started if %started;
}

# sl_client_node(NAME, SETTINGS): a started node with synclog preloaded
# and the extension created in postgres; SETTINGS (name => value) go to
# postgresql.conf.
sub sl_client_node
{
	my ($name, %settings) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'synclog'\n"
		  . join('', map { "$_ = $settings{$_}\n" } sort keys %settings));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION synclog');
	return $node;
}

# sl_spawn(OUT, COMMAND...): start COMMAND with stdout and stderr appended
# to OUT; returns its pid.
sub sl_spawn
{
	my ($out, @cmd) = @_;
	my $child = fork();
	die "fork: $!" unless defined $child;
	if ($child == 0)
	{
		open(STDOUT, '>>', $out) or die "$out: $!";
		open(STDERR, '>&', \*STDOUT) or die;
		exec(@cmd) or die "exec $cmd[0]: $!";
	}
	$started{$child} = 1;
	return $child;
}

# sl_follow(OUT, BIN, DSN, DOC, DIR, CLIENT_ID, ARGS...): a synclog-follow
# that polls every 200 ms and acks every 300 ms, output appended to OUT.
sub sl_follow
{
	my ($out, $bin, $dsn, $doc, $dir, $id, @args) = @_;
	return sl_spawn($out, $bin, '--dsn', $dsn, '--doc', $doc, '--dir', $dir, '--client-id', $id,
		'--poll', '200', '--ack-interval', '300', '--no-progress', @args);
}

# sl_stop(PID, SIGNAL): send SIGNAL to a process started here and wait for
# it; returns its wait status.
sub sl_stop
{
	my ($pid, $sig) = @_;
	kill $sig, $pid;
	return sl_wait($pid);
}

# sl_wait(PID): wait for a process started here to exit; its wait status.
sub sl_wait
{
	my ($pid) = @_;
	waitpid($pid, 0);
	my $status = $?;
	delete $started{$pid};
	return $status;
}

# sl_count_lines(FILE, RE): how many lines of FILE match RE.
sub sl_count_lines
{
	my ($file, $re) = @_;
	return 0 unless -e $file;
	return scalar(grep { /$re/ } split /\n/, slurp_file($file));
}

# sl_wait_lines(FILE, RE, N, TIMEOUT): wait until N lines match; 1 if so.
sub sl_wait_lines
{
	my ($file, $re, $n, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	while (time < $deadline)
	{
		return 1 if sl_count_lines($file, $re) >= $n;
		sleep 0.05;
	}
	return 0;
}

1;
