# NOTIFY on rotation (always) and on append (opt-in): the channel, the JSON
# payload (the event and nothing about the document), delivery only on
# commit, and a channel that only readers of the document can learn and
# that changes with the database's channel key.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->start;
$node->safe_psql('postgres', q{CREATE EXTENSION synclog});

# The notifications a listening session has received since the last call,
# as [channel, payload] pairs.  Whatever it counts, it counts once
# delivery has caught up: it sends a NOTIFY on a sentinel channel (the
# listener listens to it too) and reads until the sentinel arrives.  A
# listener gets notifications in commit order, so by then it has every one
# committed before; "no notification" is never a matter of waiting long
# enough.
my $sentinel = 0;

sub received
{
	my ($session) = @_;
	my @n;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	$sentinel++;
	$node->safe_psql('postgres', "NOTIFY synclog_test_sentinel, '$sentinel'");
	while (time < $deadline)
	{
		my $out = $session->query_safe('SELECT 1');
		while ($out =~ /Asynchronous notification "([^"]+)" with payload "(.*)" received/g)
		{
			if ($1 ne 'synclog_test_sentinel')
			{
				push @n, [ $1, $2 ];
			}
			elsif ($2 eq $sentinel)
			{
				return @n;
			}
		}
		sleep 0.05;
	}
	die "sentinel notification $sentinel did not arrive";
}

my $listener = $node->background_psql('postgres');
my $doc = 'notes';
my $channel = $node->safe_psql('postgres', "SELECT synclog.channel('$doc')");
like($channel, qr/^synclog_[0-9a-f]{32}$/, 'channel is a plain identifier');
$listener->query_safe(qq{LISTEN "$channel"});
$listener->query_safe(q{LISTEN synclog_test_sentinel});

my $log1 = $node->safe_psql('postgres', "SELECT synclog.create_doc('$doc')");
$node->safe_psql('postgres', "SELECT synclog.append('$doc', ARRAY['\\x01']::bytea[], ARRAY['\\x02']::bytea[])");
is(scalar(received($listener)), 0, 'no notification on append by default');

# A rotation rolled back announces nothing.
$node->safe_psql('postgres', "BEGIN; SELECT synclog.compact('$doc'); ROLLBACK;");
is(scalar(received($listener)), 0, 'a rolled back rotation is not announced');

my $log2 = $node->safe_psql('postgres', "SELECT synclog.compact('$doc')");
my @n = received($listener);
is(scalar(@n), 1, 'one notification per committed rotation');
is($n[0][0], $channel, 'on the document channel');
is($n[0][1], q({"event":"rotate"}), 'rotation payload says only the event');

# Opt-in append notifications.
$node->safe_psql('postgres',
	"SET synclog.notify_append = on; SELECT synclog.append('$doc', ARRAY['\\x01']::bytea[], ARRAY['\\x03']::bytea[])");
@n = received($listener);
is(scalar(@n), 1, 'append notification when synclog.notify_append is on');
is($n[0][1], q({"event":"append"}), 'append payload says only the event');

# Other documents' channels are not heard.
$node->safe_psql('postgres', q{SELECT synclog.create_doc('other');
	SELECT synclog.append('other', ARRAY['\x01']::bytea[], ARRAY['\x02']::bytea[]);
	SELECT synclog.compact('other');});
is(scalar(received($listener)), 0, 'a listener hears only the documents it follows');

# A document with a hostile id is announced like any other.
$node->safe_psql('postgres', q{SELECT synclog.create_doc(repeat(chr(1), 200));
	SELECT synclog.append(repeat(chr(1), 200), ARRAY['\x01']::bytea[], ARRAY['\x02']::bytea[]);});
my $ugly_channel = $node->safe_psql('postgres', q{SELECT synclog.channel(repeat(chr(1), 200))});
like($ugly_channel, qr/^synclog_[0-9a-f]{32}$/, 'a hostile id gets a plain channel');
$listener->query_safe(qq{LISTEN "$ugly_channel"});
$node->safe_psql('postgres', q{SELECT synclog.compact(repeat(chr(1), 200))});
@n = received($listener);
is(scalar(@n), 1, 'rotation of a document with a hostile id is announced');
is($n[0][1], q({"event":"rotate"}), 'with the same payload');

# A role with no synclog grant cannot learn a channel; the old 0.1 channel
# (a plain hash of the id, which anyone could compute) is silent.
$node->safe_psql('postgres', 'CREATE ROLE outsider LOGIN');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT synclog.channel('$doc')",
	extra_params => [ '-U', 'outsider' ]);
like($err, qr/permission denied for (schema synclog|function channel)/, 'an outsider cannot ask for a channel');
$listener->query_safe(q{LISTEN synclog_704c9df08ffe6a2d});
$node->safe_psql('postgres', "SELECT synclog.compact('$doc')");
@n = received($listener);
is(scalar(@n), 1, 'one notification for the rotation');
is($n[0][0], $channel, 'only on the keyed channel, not on the 0.1 channel');

# Replacing the key moves every channel: the old one stays silent.
$node->safe_psql('postgres', 'SELECT synclog.rotate_channel_key()');
my $channel2 = $node->safe_psql('postgres', "SELECT synclog.channel('$doc')");
isnt($channel2, $channel, 'a new key gives a new channel');
$listener->query_safe(qq{LISTEN "$channel2"});
$node->safe_psql('postgres', "SELECT synclog.append('$doc', ARRAY['\\x05']::bytea[], ARRAY['\\x05']::bytea[])");
$node->safe_psql('postgres', "SELECT synclog.compact('$doc')");
@n = received($listener);
is(scalar(@n), 1, 'one notification after the key changed');
is($n[0][0], $channel2, 'on the new channel only');

$listener->quit;
$node->stop;
done_testing();
