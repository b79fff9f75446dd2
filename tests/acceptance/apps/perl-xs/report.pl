#!/usr/bin/perl
# A CLI in the style of a Perl batch job: reads records, stores them in SQLite
# (DBI + DBD::SQLite, XS linking libsqlite3), prints a JSON report (JSON::XS)
# with digests (Digest::SHA, XS) and a few core XS modules (List::Util, POSIX,
# Encode, Time::HiRes, Storable, MIME::Base64).
use strict;
use warnings;
use DBI;
use JSON::XS;
use Digest::SHA qw(sha256_hex);
use Digest::MD5 qw(md5_hex);
use List::Util qw(sum max first);
use POSIX qw(floor strftime);
use Encode qw(encode decode);
use Storable qw(freeze thaw);
use MIME::Base64 qw(encode_base64);
use Time::Local qw(timegm);

my $mode = shift // 'report';
my @words = @ARGV ? @ARGV : qw(alpha beta gamma delta epsilon);

my $dbh = DBI->connect('dbi:SQLite:dbname=:memory:', '', '', { RaiseError => 1, AutoCommit => 1 });
$dbh->do('create table w(id integer primary key, word text, len int)');
my $ins = $dbh->prepare('insert into w(word, len) values (?, ?)');
$ins->execute($_, length $_) for @words;
my $json = JSON::XS->new->canonical->utf8;

if ($mode eq 'report') {
    my $rows = $dbh->selectall_arrayref('select id, word, len from w order by len desc, word', { Slice => {} });
    print $json->encode({
        count => scalar @words,
        total => sum(map { length } @words),
        longest => $rows->[0]{word},
        rows => $rows,
        sqlite => ($dbh->{sqlite_version} ge '3' ? 'yes' : 'no'),
        dbd => $DBD::SQLite::VERSION ge '1' ? 'yes' : 'no',
    }), "\n";
} elsif ($mode eq 'digest') {
    my $s = join ',', @words;
    print join("\n", sha256_hex($s), md5_hex($s), encode_base64(freeze(\@words)) eq encode_base64(freeze(thaw(freeze(\@words)))) ? 'storable ok' : 'storable bad'), "\n";
} elsif ($mode eq 'text') {
    my $u = decode('UTF-8', "caf\xc3\xa9 na\xc3\xafve");
    print encode('UTF-8', uc $u), ' ', length($u), ' ', encode('ISO-8859-1', $u) eq "caf\xe9 na\xefve" ? 'latin1 ok' : 'latin1 bad', "\n";
    print strftime('%Y-%m-%d %H:%M:%S', gmtime(timegm(0, 30, 12, 1, 6, 2024))), ' ', floor(max(3.7, 2.2)), ' ', first { /^g/ } @words;
    print "\n";
} elsif ($mode eq 'json') {
    my $in = $json->decode('{"a":[1,2,{"b":"\u00fc"}],"n":1.5}');
    print $json->encode([$in->{a}[2]{b}, $in->{n} * 2, JSON::XS::true]), "\n";
} else {
    die "unknown mode $mode\n";
}
