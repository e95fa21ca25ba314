# NOTIFY on rotation (always) and on append (opt-in): the channel, the JSON
# payload, delivery only on commit, and the payload bound for the longest
# and most escape-heavy document ids.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->start;
$node->safe_psql('postgres', q{CREATE EXTENSION synclog});

# Returns the notifications a listening session has received, as
# [channel, payload] pairs.
sub received
{
	my ($session) = @_;
	my $out = $session->query_safe('SELECT 1');
	my @n;
	while ($out =~ /Asynchronous notification "([^"]+)" with payload "(.*)" received/g)
	{
		push @n, [ $1, $2 ];
	}
	return @n;
}

my $listener = $node->background_psql('postgres');
my $doc = 'notes';
my $channel = $node->safe_psql('postgres', "SELECT synclog.channel('$doc')");
like($channel, qr/^synclog_[0-9a-f]{16}$/, 'channel is a plain identifier');
$listener->query_safe(qq{LISTEN "$channel"});

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
my $hash = $node->safe_psql('postgres',
	"SELECT encode(snapshot_hash, 'hex') FROM synclog.current_log('$doc')");
is( $n[0][1],
	qq({"event":"rotate","doc":"$doc","old_log":"$log1","new_log":"$log2","snapshot_lsn":1,"hash":"$hash"}),
	'rotation payload names doc, old and new log, snapshot LSN and hash');

# Opt-in append notifications.
$node->safe_psql('postgres',
	"SET synclog.notify_append = on; SELECT synclog.append('$doc', ARRAY['\\x01']::bytea[], ARRAY['\\x03']::bytea[])");
@n = received($listener);
is(scalar(@n), 1, 'append notification when synclog.notify_append is on');
is($n[0][1], qq({"event":"append","doc":"$doc","log":"$log2","lsn":2}), 'append payload');

# Other documents' channels are not heard.
$node->safe_psql('postgres', q{SELECT synclog.create_doc('other');
	SELECT synclog.append('other', ARRAY['\x01']::bytea[], ARRAY['\x02']::bytea[]);
	SELECT synclog.compact('other');});
is(scalar(received($listener)), 0, 'a listener hears only the documents it follows');

# The worst case for the payload: 200 bytes that all need escaping.
my $ugly = $node->safe_psql('postgres', q{SELECT repeat(chr(1), 200)});
$node->safe_psql('postgres', q{SELECT synclog.create_doc(repeat(chr(1), 200));
	SELECT synclog.append(repeat(chr(1), 200), ARRAY['\x01']::bytea[], ARRAY['\x02']::bytea[]);});
my $ugly_channel = $node->safe_psql('postgres', q{SELECT synclog.channel(repeat(chr(1), 200))});
$listener->query_safe(qq{LISTEN "$ugly_channel"});
$node->safe_psql('postgres', q{SELECT synclog.compact(repeat(chr(1), 200))});
@n = received($listener);
is(scalar(@n), 1, 'rotation of a document with a hostile id is announced');
cmp_ok(length($n[0][1]), '<', 8000, 'payload stays under the NOTIFY limit (' . length($n[0][1]) . ' bytes)');
like($n[0][1], qr/^\{"event":"rotate","doc":"(\\u0001){200}"/, 'the id is JSON-escaped, not pasted');

$listener->quit;
$node->stop;
done_testing();
