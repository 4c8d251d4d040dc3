#!/usr/bin/perl
# Unit tests of connectd.cgi's own logic: escaping, the state in words, the policy form's
# checks and the 24-hour timeline layout. Run by tests/wui.rs (`prove`-compatible TAP).
# Copyright (C) 2026 The connectd developers
# SPDX-License-Identifier: GPL-3.0-or-later
use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use File::Spec;

$ENV{'TZ'} = 'UTC';
POSIX::tzset() if defined &POSIX::tzset;
my $dir = File::Spec->rel2abs(dirname(__FILE__));
my $cgi = "$dir/../connectd.cgi";
# Loaded with `do`: the page's main() does not run (`main() unless caller`).
do $cgi or die "cannot load $cgi: " . ($@ || $!);
# The English strings, as lang.pl would load them.
{
	package Lang;
	do("$dir/../lang/connectd.en.pl") or die "lang: $@ $!";
}
require POSIX;
POSIX::tzset();

# --- the German strings cover exactly the English keys
{
	my %en = %Lang::tr;
	local %Lang::tr = ();
	{ package Lang; do("$dir/../lang/connectd.de.pl") or die "lang de: $@ $!"; }
	is_deeply([ sort keys %Lang::tr ], [ sort keys %en ], 'de has every en key and no other');
	is($Lang::tr{'connectd disconnect'}, 'Trennen', 'de is German');
}

# --- escaping
is(h(q{<script>alert("x")</script>&'}), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;', 'h escapes text and attributes');
is(h(undef), '', 'h of undef');

# --- formatting
is(duration(45), '45s');
is(duration(200), '3m 20s');
is(duration(3900), '1h 5m');
is(duration(90000), '1d 1h');
is(duration('x'), '-', 'duration refuses non-numbers');
is(hhmm(14 * 3600 + 2 * 60), '14:02');
is(num1(12.345), '12.3');
is(num1(undef), '-');
is(profile_label('2', 'LTE'), '2 (LTE)');
is(profile_label('2', '2'), '2');

# --- the state in words
my $now = 14 * 3600 + 10 * 60;    # 14:10 UTC on 1970-01-01
my $backup = {
	running => 1, state => 'online', active_profile => '2', active_display_name => 'LTE',
	primary_profile => '1', primary_display_name => 'DSL', auto => 1,
	next_failback_in_secs => 22 * 60, red => { active => 1 },
	transitions => [ { at => 14 * 3600 + 2 * 60, from => '1', to => '2', kind => 'failover', reason => 'no traffic' } ],
};
is(state_words($backup, $now),
	'on backup 2 (LTE) since 14:02, primary 1 (DSL) failed: no traffic; next failback try 14:32',
	'on a backup: since, why and the next failback try');
my $hist = { intervals => [ { profile => '2', from => 14 * 3600 + 3 * 60, to => undef } ] };
like(state_words($backup, $now, $hist), qr/^on backup 2 \(LTE\) since 14:03,/, 'since: when the backup began to carry traffic');
my $core = { transitions => [
	{ from => 'Online(1)', to => 'Pretesting(2)', reason => '3/3 probe rounds failed on ppp0 on 1: up but no traffic' },
	{ from => 'Pretesting(2)', to => 'Online(2)', reason => '2 pre-test passed (1/1)' } ] };
is(state_words({ %$backup, core => $core }, $now),
	'on backup 2 (LTE) since 14:02, primary 1 (DSL) failed: up but no traffic; next failback try 14:32',
	'why the primary failed comes from the supervisor\'s own move away from it');
is(state_words({ %$backup, pinned => 1, next_failback_in_secs => undef }, $now),
	'on backup 2 (LTE) since 14:02, primary 1 (DSL) failed: no traffic; pinned by a manual failover (no automatic failback)');
is(state_words({ %$backup, active_profile => '1', active_display_name => 'DSL' }, $now),
	'online on the primary 1 (DSL) since -', 'online on the primary, nothing known of since when');
is(state_words({ %$backup, active_profile => '1', active_display_name => 'DSL', red => { active => 1, since => '1970-01-01T13:55:00+00:00' } }, $now),
	'online on the primary 1 (DSL) since 13:55', 'online on the primary since RED came up');
like(state_words({ %$backup, state => 'trial', core => { grace_left_secs => 4 } }, $now),
	qr/^trying the primary 1 \(DSL\) again .*4s/, 'during a failback trial');
is(state_words({ running => 0, active_profile => '2', red => { active => 0 } }, $now),
	'not connected (profile 2); connectd is not supervising');
is(state_words(undef, $now), 'connectd cannot be reached');

is(short_reason('3 consecutive failed rounds: 0 of 4 targets answered (203.0.113.1: no reply) on ppp0 on 1: up but no traffic'), 'up but no traffic');
is(short_reason('pppd exited'), 'pppd exited');

# --- policy form
my $current = [ { key => 'FAILBACK_DELAY', value => '300' }, { key => 'FAILOVER_ENABLED', value => 'on' } ];
my ($pairs, $errors) = policy_changes({ FAILBACK_DELAY => ' 600 ', FAILOVER_ENABLED => 'on', OTHER => 'x' }, $current);
is_deeply($pairs, ['FAILBACK_DELAY=600'], 'only changed known keys are handed on, trimmed');
is_deeply($errors, [], 'no errors');
($pairs, $errors) = policy_changes({ FAILBACK_DELAY => '1; rm -rf /' }, $current);
is_deeply($pairs, [], 'a value with a space or ; is not handed on');
like($errors->[0], qr/\(FAILBACK_DELAY\)/, 'the error names the field');

# --- action arguments
my @err;
is_deeply([ action_args('failover', { PROFILE => '2' }, \@err) ], [ 'failover', '2' ]);
is_deeply([ action_args('failover', { PROFILE => '../x' }, \@err) ], [], 'a bad profile name is refused');
is(scalar @err, 1, 'with an error');
is_deeply([ action_args('auto', { MODE => 'off' }, \@err) ], [ 'auto', 'off' ]);
is_deeply([ action_args('disconnect', {}, \@err) ], ['disconnect']);
like(refused_message('policy', "connectd: /var/ipfire/connectd/settings: FAILBACK_DELAY=\"abc\": expected seconds\n", 2),
	qr/^Seconds on a backup before the first failback try \(FAILBACK_DELAY\): /, 'a refused value names the field');

# --- timeline layout: 720 px wide, plot from x=40 to x=710 (670 px for 24 h)
my $t0 = 100000;
my $tl = timeline({
	intervals => [
		{ profile => '1', from => $t0 - 2 * 86400, to => $t0 - 43200 },  # clipped at the left edge
		{ profile => '2', from => $t0 - 43200, to => $t0 - 21600 },
		{ profile => undef, from => $t0 - 21600, to => $t0 - 21000 },
		{ profile => '1', from => $t0 - 21000, to => undef },            # open: up to now
	],
	switches => [ { at => $t0 - 43200, from => '1', to => '2', kind => 'failover', reason => '<b>no traffic</b>' },
		{ at => $t0 - 3 * 86400, from => '2', to => '1', kind => 'failback', reason => 'too old' } ],
	rtt => [ [ $t0 - 43200, 10 ], [ $t0 - 40000, 20 ], [ $t0 - 30000, undef ], [ $t0 - 100, 5 ] ],
}, $t0, [ '1', '2' ]);
is(scalar @{ $tl->{bands} }, 4, 'four bands');
is($tl->{bands}[0]{x}, '40.0', 'the first band starts at the left edge (clipped)');
is($tl->{bands}[0]{w}, '335.0', 'and covers 12 h = 335 px');
is($tl->{bands}[1]{x}, '375.0', 'the backup band starts at 12 h');
is($tl->{bands}[1]{colour}, '#333399', 'profile 2 has the chain\'s second colour');
is($tl->{bands}[3]{x} + $tl->{bands}[3]{w}, 710, 'an open interval reaches now');
is($tl->{bands}[2]{colour}, '#cccccc', 'offline is grey');
is(scalar @{ $tl->{switches} }, 1, 'switches outside the 24 h are left out');
is($tl->{switches}[0]{x}, '375.0', 'the switch is marked where it happened');
is(scalar @{ $tl->{rtt} }, 3, 'RTT points without the missing sample');
is($tl->{rtt}[1][1], sprintf('%.1f', 128 - 20 * 76 / 22), 'the highest RTT is drawn at 1/1.1 of the scale');
like($tl->{svg}, qr/>22 ms</, 'the RTT scale is 1.1 times the highest RTT');
like(timeline({ rtt => [ [ $t0 - 60, 0.3 ] ] }, $t0, [])->{svg}, qr/>0\.3 ms</, 'a sub-millisecond scale keeps a decimal');
like($tl->{svg}, qr/&lt;b&gt;no traffic&lt;\/b&gt;/, 'reasons are escaped inside the SVG');
unlike($tl->{svg}, qr/<b>/, 'no markup from a reason');
is(scalar(() = $tl->{svg} =~ /<polyline/g), 1, 'a missing RTT sample breaks the line');
is(scalar(() = $tl->{svg} =~ /<circle class="rtt"/g), 1, 'a lone point after the gap is a dot');
is_deeply([ map { $_->{profile} } @{ $tl->{legend} } ], [ '1', '2' ], 'the legend in chain order');
my $short = timeline({ intervals => [ { profile => '2', from => $t0 - 30, to => undef } ] }, $t0, ['1', '2']);
is($short->{bands}[0]{w}, '1.0', 'half a minute is still a visible band');
my $hour = timeline({ intervals => [ { profile => '2', from => $t0 - 1800, to => undef } ] }, $t0, ['1', '2'], 3600);
is($hour->{bands}[0]{x}, '375.0', 'the last hour: half an hour ago is the middle');
like($hour->{svg}, qr/>\Q@{[ hhmm($t0 - 1800) ]}\E</, 'ticks every quarter of the span');
my $evil = timeline({ intervals => [ { profile => '"><script>x</script>', from => $t0 - 100, to => undef } ] }, $t0, []);
unlike($evil->{svg}, qr/<script>/, 'a hostile profile name cannot break out of the SVG');

done_testing();
