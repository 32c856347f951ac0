#!/usr/bin/perl
# Drive a Postfach server with Perl's Mail::IMAPClient, the library imapsync is built on, the way
# a migration tool uses it. Run by crates/server/tests/clients.rs; usable by hand too:
#
#     mail_imapclient.pl PORT USER PASSWORD CAFILE
#
# Copies a small "old server" mailbox in as imapsync does (folders created with the server's
# separator, APPEND with flags and the original internal date, Message-IDs fetched to skip
# duplicates on a second pass), then checks it message by message (size, internal date, flags,
# bytes), changes flags, copies, moves, expunges by UID, reads STATUS, and waits in IDLE for a
# change made on a second connection. Prints "mail-imapclient: all checks passed" and exits 0,
# or dies with the failing check.

use strict;
use warnings;
use Mail::IMAPClient;

my ($port, $user, $password, $cafile) = @ARGV;
die "usage: $0 PORT USER PASSWORD CAFILE\n" unless defined $cafile;

sub check {
    my ($ok, $what) = @_;
    die "check failed: $what\n" unless $ok;
}

sub connect_imap {
    my $imap = Mail::IMAPClient->new(
        Server   => '127.0.0.1',
        Port     => $port,
        Ssl      => [
            SSL_ca_file         => $cafile,
            SSL_verify_mode     => 1,
            SSL_verifycn_scheme => 'default',
            SSL_verifycn_name   => '127.0.0.1',
        ],
        User     => $user,
        Password => $password,
        Uid      => 1,
        Peek     => 1,
        Timeout  => 30,
    ) or die "connect/login: $@\n";
    return $imap;
}

# The "old server's" mail: folder => [ [ message, flags, internal date ], ... ].
my %old = (
    'INBOX' => [
        [ mail(1), [ '\\Seen' ], '07-Feb-1994 21:52:25 -0800' ],
        [ mail(2), [ '\\Seen', '\\Answered', '$Label1' ], '01-Jan-2001 00:00:00 +0000' ],
        [ mail(3), [], '29-Feb-2020 23:59:59 +0100' ],
    ],
    'Projects/2021' => [
        [ mail(4), [ '\\Flagged' ], '15-Jun-2021 12:00:00 +0200' ],
        [ mail(5), [ '\\Draft' ], '16-Jun-2021 08:30:00 -0500' ],
    ],
);

sub mail {
    my ($i) = @_;
    return "From: Old Server <old\@example.org>\r\n"
      . "To: $user\@example.com\r\n"
      . "Subject: Migrated message $i\r\n"
      . "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
      . "Message-ID: <mig-$i\@imapclient.perl>\r\n"
      . "\r\n"
      . "Body of migrated message $i.\r\n"
      . ( "A line of text to make the sizes differ.\r\n" x $i );
}

my $imap = connect_imap();
check( $imap->has_capability('UIDPLUS'), 'UIDPLUS advertised' );
check( $imap->has_capability('IDLE'),    'IDLE advertised' );
my $sep = $imap->separator;
check( defined $sep && length $sep == 1, "separator: " . ( $sep // 'undef' ) );

# Two passes, as a migration tool is run twice: the second finds every message already there.
for my $pass ( 1, 2 ) {
    for my $folder ( sort keys %old ) {
        ( my $target = $folder ) =~ s{/}{$sep}g;
        unless ( $imap->exists($target) ) {
            $imap->create($target) or die "CREATE $target: " . $imap->LastError . "\n";
        }
        $imap->select($target) or die "SELECT $target: " . $imap->LastError . "\n";
        my %have;
        my $uids = $imap->search('ALL') or die "SEARCH: " . $imap->LastError . "\n";
        if (@$uids) {
            my $headers = $imap->parse_headers( $uids, 'Message-Id' ) or die "headers: " . $imap->LastError . "\n";
            $have{ $headers->{$_}{'Message-Id'}[0] } = $_ for keys %$headers;
        }
        for my $entry ( @{ $old{$folder} } ) {
            my ( $text, $flags, $date ) = @$entry;
            my ($id) = $text =~ /^Message-ID: (\S+)\r$/m;
            next if $have{$id};
            check( $pass == 1, "pass 2 had to copy $id again" );
            my $uid = $imap->append_string( $target, $text, join( ' ', @$flags ), $date )
              or die "APPEND: " . $imap->LastError . "\n";
            check( $uid =~ /^\d+$/, "APPENDUID gave a UID: $uid" );
        }
    }
}

# Every message as it was: size, internal date, flags, bytes.
for my $folder ( sort keys %old ) {
    ( my $target = $folder ) =~ s{/}{$sep}g;
    $imap->examine($target) or die "EXAMINE $target: " . $imap->LastError . "\n";
    my $uids = $imap->messages;
    check( @$uids == @{ $old{$folder} }, "$target holds " . scalar(@$uids) . " messages" );
    my $facts = $imap->fetch_hash( $uids, 'RFC822.SIZE', 'INTERNALDATE', 'FLAGS' )
      or die "FETCH: " . $imap->LastError . "\n";
    for my $i ( 0 .. $#$uids ) {
        my ( $text, $flags, $date ) = @{ $old{$folder}[$i] };
        my $got = $facts->{ $uids->[$i] };
        check( $got->{'RFC822.SIZE'} == length $text, "size of $target #$i: $got->{'RFC822.SIZE'}" );
        # date-day-fixed: a day below 10 comes back as SP DIGIT (RFC 3501 §9).
        ( my $got_date = $got->{'INTERNALDATE'} ) =~ s/^ /0/;
        check( $got_date eq $date, "internal date of $target #$i: $got->{'INTERNALDATE'} not $date" );
        my %got_flags = map { $_ => 1 } grep { $_ ne '\\Recent' } split ' ', $got->{'FLAGS'};
        my %want_flags = map { $_ => 1 } @$flags;
        check( join( ' ', sort keys %got_flags ) eq join( ' ', sort keys %want_flags ),
            "flags of $target #$i: $got->{'FLAGS'}" );
        check( $imap->message_string( $uids->[$i] ) eq $text, "bytes of $target #$i" );
    }
    # Peek: reading did not set \Seen.
    check( scalar @{ $imap->unseen } == scalar( grep { !grep { $_ eq '\\Seen' } @{ $_->[1] } } @{ $old{$folder} } ),
        "unseen in $target" );
}

# Flags, COPY, MOVE, UID EXPUNGE.
$imap->select('INBOX') or die;
my $inbox = $imap->messages;
$imap->set_flag( '\\Flagged', $inbox->[2] ) or die "STORE +FLAGS: " . $imap->LastError . "\n";
$imap->unset_flag( '\\Seen', $inbox->[0] ) or die "STORE -FLAGS: " . $imap->LastError . "\n";
check( ( grep { $_ eq '\\Flagged' } @{ $imap->flags( $inbox->[2] ) } ), 'flag set' );
check( !( grep { $_ eq '\\Seen' } @{ $imap->flags( $inbox->[0] ) } ), 'flag unset' );
my $copied = $imap->copy( 'Archive', $inbox->[1] ) or die "COPY: " . $imap->LastError . "\n";
my $moved  = $imap->move( 'Trash',   $inbox->[0] ) or die "MOVE: " . $imap->LastError . "\n";
$imap->delete_message( $inbox->[2] ) or die "STORE \\Deleted: " . $imap->LastError . "\n";
$imap->uidexpunge( $inbox->[2] ) or die "UID EXPUNGE: " . $imap->LastError . "\n";
# Mail::IMAPClient's move is COPY and \Deleted; UID EXPUNGE removes only the UID it names.
check( join( ',', @{ $imap->messages } ) eq "$inbox->[0],$inbox->[1]",
    'INBOX after UID EXPUNGE: ' . join( ',', @{ $imap->messages } ) );
check( ( grep { $_ eq '\\Deleted' } @{ $imap->flags( $inbox->[0] ) } ), 'the moved message is \\Deleted' );
$imap->expunge or die "EXPUNGE: " . $imap->LastError . "\n";
check( join( ',', @{ $imap->messages } ) eq $inbox->[1], 'INBOX after EXPUNGE: ' . join( ',', @{ $imap->messages } ) );
check( $imap->message_count('Archive') == 1, 'Archive holds the copy' );
check( $imap->message_count('Trash') == 1,   'Trash holds the moved message' );

# IDLE: a second connection appends; this one hears of it.
my $other = connect_imap();
my $tag = $imap->idle or die "IDLE: " . $imap->LastError . "\n";
$other->append_string( 'INBOX', mail(6) ) or die "APPEND on the second connection\n";
my $heard = '';
for ( 1 .. 10 ) {
    my $data = $imap->idle_data(1) or next;
    $heard .= join '', @$data;
    last if $heard =~ /\* \d+ EXISTS/;
}
$imap->done($tag) or die "DONE: " . $imap->LastError . "\n";
check( $heard =~ /\* 2 EXISTS/, "IDLE heard: $heard" );
$other->logout;
$imap->logout;
print "mail-imapclient $Mail::IMAPClient::VERSION: all checks passed\n";
