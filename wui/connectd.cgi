#!/usr/bin/perl
###############################################################################
#                                                                             #
# connectd.cgi: the uplink failover page of IPFire's web UI                   #
# Copyright (C) 2026 The connectd developers                                  #
#                                                                             #
# This program is free software: you can redistribute it and/or modify        #
# it under the terms of the GNU General Public License as published by        #
# the Free Software Foundation, either version 3 of the License, or           #
# (at your option) any later version.                                         #
# SPDX-License-Identifier: GPL-3.0-or-later                                   #
#                                                                             #
###############################################################################
#
# Shows what connectd does with the RED uplink and lets the administrator act on it.
# Written in IPFire's CGI idiom (html/cgi-bin/*.cgi): general-functions.pl, lang.pl and
# header.pl are required from /var/ipfire; Header::getcgihash does IPFire's POST and
# referer check (header.pl:594-611); strings come from the add-on language files
# /var/ipfire/addon-lang/connectd.LANG.pl (lang.pl:19-33).
#
# The page never reads or writes connectd's files: it reads and acts only through
# /usr/local/bin/connectdctrl, a setuid helper (4750 root:nobody) that runs `connectd`
# with a fixed argv. Policy values go to `connectd policy set`, which validates them with
# the daemon's own parser, writes them atomically and reloads the supervisor; a refused
# value comes back in IPFire's error box naming the field.
#
# The pure parts (formatting, the state in words, the timeline SVG) are subroutines that
# t/connectd.t tests; the page itself runs only when this file is executed, not when it
# is loaded with `do` (`main() unless caller`).

use strict;
use warnings;
use JSON::PP ();
use POSIX ();

our $CTRL = '/usr/local/bin/connectdctrl';

# The policy keys of the form, in order, with how they are entered (README,
# Configuration). Keys connectd reports but the form does not list are left alone.
our @POLICY_FORM = (
	[ 'FAILOVER_ENABLED',         'onoff' ],
	[ 'BACKUPPROFILE',            'text' ],
	[ 'FAILOVER_CHECK_HOST',      'text' ],
	[ 'FAILOVER_CHECK_INTERVAL',  'number' ],
	[ 'FAILOVER_CHECK_TIMEOUT',   'number' ],
	[ 'FAILOVER_RELIABILITY',     'number' ],
	[ 'FAILOVER_FAILURES',        'number' ],
	[ 'FAILOVER_CONNECT_TIMEOUT', 'number' ],
	[ 'FAILOVER_CHECK_DNS',       'onoff' ],
	[ 'FAILOVER_MAX_LOSS',        'text' ],
	[ 'FAILOVER_MAX_RTT',         'text' ],
	[ 'FAILBACK_ENABLED',         'onoff' ],
	[ 'FAILBACK_DELAY',           'number' ],
	[ 'FAILBACK_ATTEMPTS',        'number' ],
	[ 'FAILBACK_GRACE',           'number' ],
	[ 'FAILBACK_DELAY_MAX',       'number' ],
);

# What a value may hold before it is even handed on: IPFire's readhash charset
# (src/scripts/readhash), without '=', as connectdctrl checks it too.
our $VALUE_RE = qr{^[A-Za-z0-9/,.:%_\@#+-]{0,256}$};
our $PROFILE_RE = qr{^[A-Za-z0-9_-]{1,32}$};

# Colours of the timeline, one per profile in chain order (IPFire's theme palette).
our @COLOURS = ('#339933', '#333399', '#FF9933', '#990099', '#339999', '#993333');

###############################################################################
# Pure helpers (tested by t/connectd.t)

# HTML-escapes a value for text and attribute context. Everything the page prints that
# did not come from this file goes through here: profile names, reasons, addresses and
# errors come from files the web user can write.
sub h {
	my $s = shift;
	$s = '' unless defined $s;
	$s =~ s/&/&amp;/g;
	$s =~ s/</&lt;/g;
	$s =~ s/>/&gt;/g;
	$s =~ s/"/&quot;/g;
	$s =~ s/'/&#39;/g;
	return $s;
}

# A string from the language files, or the key itself when it is missing.
sub L {
	my $k = shift;
	no warnings 'once';
	my $v = $Lang::tr{$k};
	return defined $v ? $v : $k;
}

# Unix time as local HH:MM.
sub hhmm {
	my $t = shift;
	return '-' unless defined $t && $t =~ /^-?\d+(\.\d+)?$/;
	return POSIX::strftime('%H:%M', localtime($t));
}

# Seconds as "1h 5m", "3m 20s", "45s".
sub duration {
	my $s = shift;
	return '-' unless defined $s && $s =~ /^\d+(\.\d+)?$/;
	$s = int($s);
	my ($d, $hr, $m, $sec) = (int($s / 86400), int($s % 86400 / 3600), int($s % 3600 / 60), $s % 60);
	return "${d}d ${hr}h" if $d;
	return "${hr}h ${m}m" if $hr;
	return "${m}m ${sec}s" if $m;
	return "${sec}s";
}

# A number with one decimal, or '-'.
sub num1 {
	my $v = shift;
	return '-' unless defined $v && $v =~ /^-?\d+(\.\d+)?(e-?\d+)?$/i;
	return sprintf('%.1f', $v);
}

# "NAME (DISPLAY)" for a profile, unescaped.
sub profile_label {
	my ($name, $display) = @_;
	return '-' unless defined $name && $name ne '';
	return $name if !defined $display || $display eq '' || $display eq $name;
	return "$name ($display)";
}

# The last transition that moved the box off the primary, if the box is on a backup.
sub last_failover {
	my $st = shift;
	my $ts = $st->{'transitions'};
	return undef unless ref $ts eq 'ARRAY';
	foreach my $t (reverse @$ts) {
		next unless ref $t eq 'HASH';
		return $t if defined $t->{'to'} && defined $st->{'active_profile'} && $t->{'to'} eq $st->{'active_profile'};
	}
	return undef;
}

# Since when PROFILE carries traffic without a break, from the history's intervals.
sub carrying_since {
	my ($hist, $profile) = @_;
	return undef unless ref $hist eq 'HASH' && ref $hist->{'intervals'} eq 'ARRAY' && defined $profile;
	my $iv = $hist->{'intervals'}[-1];
	return undef unless ref $iv eq 'HASH' && defined $iv->{'profile'} && $iv->{'profile'} eq $profile && !defined $iv->{'to'};
	return $iv->{'from'};
}

# Why the primary stopped carrying traffic: the reason of the supervisor's newest move
# away from Online(PRIMARY) (`core.transitions`), else of the last switch.
sub primary_failure {
	my ($st, $last) = @_;
	my $p = $st->{'primary_profile'};
	my $ts = ref $st->{'core'} eq 'HASH' ? $st->{'core'}{'transitions'} : undef;
	if (defined $p && ref $ts eq 'ARRAY') {
		foreach my $t (reverse @$ts) {
			next unless ref $t eq 'HASH' && defined $t->{'from'} && defined $t->{'reason'};
			return $t->{'reason'} if $t->{'from'} =~ /^(Online|Trial)\(\Q$p\E\)/ && ($t->{'to'} // '') !~ /^Online/ && $t->{'reason'} ne '';
		}
	}
	return $last->{'reason'} if $last && defined $last->{'reason'} && $last->{'reason'} ne '';
	return L('connectd unknown');
}

# The last clause of a reason, for the headline ("... on 1: up but no traffic" gives
# "up but no traffic"); the whole reason is shown beneath it.
sub short_reason {
	my $r = shift;
	return '' unless defined $r;
	return $1 if $r =~ /:\s*([^:()]{3,80})$/;
	return $r;
}

# The state in words an administrator understands, e.g. "on backup 2 (LTE) since 14:02,
# primary 1 (DSL) failed: no traffic; next failback try 14:32". Unescaped text.
# $now: unix time of the status; $hist: the history (for "since"), may be undef.
sub state_words {
	my ($st, $now, $hist) = @_;
	return L('connectd no status') unless ref $st eq 'HASH';
	my $active = profile_label($st->{'active_profile'}, $st->{'active_display_name'});
	my $primary = profile_label($st->{'primary_profile'}, $st->{'primary_display_name'});
	my $red = ref $st->{'red'} eq 'HASH' ? $st->{'red'} : {};
	my $running = $st->{'running'} ? 1 : 0;
	my $state = $st->{'state'} // '';
	my $on_primary = defined $st->{'active_profile'} && defined $st->{'primary_profile'}
		&& $st->{'active_profile'} eq $st->{'primary_profile'};

	if (!$running) {
		return $red->{'active'}
			? sprintf(L('connectd words online unsupervised'), $active)
			: sprintf(L('connectd words stopped'), $active);
	}
	my $last = last_failover($st);
	my $from = carrying_since($hist, $st->{'active_profile'});
	$from = $last->{'at'} if !defined $from && $last;
	my $since = hhmm($from);
	# Else since RED came up: `red.since` is the box's local time in RFC 3339.
	$since = $1 if $since eq '-' && defined $red->{'since'} && $red->{'since'} =~ /T(\d\d:\d\d)/;
	if ($state eq 'trial') {
		my $left = $st->{'core'}{'grace_left_secs'};
		return sprintf(L('connectd words trial'), $primary, defined $left ? duration($left) : '-');
	}
	if ($state eq 'failback-test') {
		return sprintf(L('connectd words failback test'), $primary, $active);
	}
	if ($state eq 'online' && $on_primary) {
		return sprintf(L('connectd words online primary'), $primary, $since);
	}
	if ($state eq 'online') {
		my $why = short_reason(primary_failure($st, $last));
		my $words = sprintf(L('connectd words on backup'), $active, $since, $primary, $why);
		if ($st->{'pinned'}) {
			$words .= '; ' . L('connectd words pinned');
		} elsif (defined $st->{'next_failback_in_secs'} && $st->{'next_failback_in_secs'} =~ /^\d+$/) {
			$words .= '; ' . sprintf(L('connectd words next failback'), hhmm($now + $st->{'next_failback_in_secs'}));
		} elsif (defined $st->{'auto'} && !$st->{'auto'}) {
			$words .= '; ' . L('connectd words auto off');
		}
		return $words;
	}
	my $target = $st->{'core'}{'target'};
	if (defined $target && $target ne '') {
		return sprintf(L('connectd words switching'), $target, $state);
	}
	return sprintf(L('connectd words other'), $state, $active);
}

# Lays out the timeline of the last $span seconds (default 24 hours). $hist: the
# `history --json` object; $now: unix time; $order: profile names in chain order (for
# the colours). Returns a hash with the
# geometry (for tests) and the SVG text ('svg').
#   bands:    [{profile, x, w, colour, from, to}] which profile carried traffic when
#   switches: [{x, at, text}]                      every switch, marked with a line
#   rtt:      [[x, y], ...]                        RTT of the active uplink
sub timeline {
	my ($hist, $now, $order, $span) = @_;
	$span ||= 86400;
	my ($W, $H, $left, $right) = (720, 150, 40, 10);
	my ($band_y, $band_h) = (18, 22);
	my ($rtt_top, $rtt_bottom) = (52, 128);
	my $start = $now - $span;
	my $pw = $W - $left - $right;
	my $x = sub {
		my $t = shift;
		$t = $start if $t < $start;
		$t = $now if $t > $now;
		return $left + ($t - $start) * $pw / $span;
	};
	my %colour;
	my $i = 0;
	foreach my $p (@{ $order || [] }) {
		$colour{$p} //= $COLOURS[$i++ % @COLOURS];
	}
	my $colour_of = sub {
		my $p = shift;
		$colour{$p} //= $COLOURS[$i++ % @COLOURS];
		return $colour{$p};
	};

	my (@bands, @switches, @rtt);
	foreach my $iv (@{ ref $hist->{'intervals'} eq 'ARRAY' ? $hist->{'intervals'} : [] }) {
		next unless ref $iv eq 'HASH' && defined $iv->{'from'};
		my $to = defined $iv->{'to'} ? $iv->{'to'} : $now;
		next if $to <= $start || $iv->{'from'} >= $now || $to <= $iv->{'from'};
		my $p = $iv->{'profile'};
		my ($x0, $x1) = ($x->($iv->{'from'}), $x->($to));
		# A span shorter than a pixel (2 minutes of a day) is still drawn.
		$x0 = $x1 - 1 if $x1 - $x0 < 1;
		push @bands, {
			profile => $p, x => sprintf('%.1f', $x0), w => sprintf('%.1f', $x1 - $x0),
			colour => defined $p ? $colour_of->($p) : '#cccccc',
			from => $iv->{'from'}, to => $to,
		};
	}
	foreach my $s (@{ ref $hist->{'switches'} eq 'ARRAY' ? $hist->{'switches'} : [] }) {
		next unless ref $s eq 'HASH' && defined $s->{'at'};
		next if $s->{'at'} < $start || $s->{'at'} > $now;
		my $text = sprintf('%s %s: %s -> %s (%s)', hhmm($s->{'at'}), $s->{'kind'} // '',
			$s->{'from'} // '-', $s->{'to'} // '-', $s->{'reason'} // '');
		push @switches, { x => sprintf('%.1f', $x->($s->{'at'})), at => $s->{'at'}, text => $text };
	}
	my @samples = grep { ref $_ eq 'ARRAY' && defined $_->[0] && $_->[0] >= $start && $_->[0] <= $now }
		@{ ref $hist->{'rtt'} eq 'ARRAY' ? $hist->{'rtt'} : [] };
	my $max = 0;
	foreach my $s (@samples) {
		$max = $s->[1] if defined $s->[1] && $s->[1] > $max;
	}
	my $scale = $max > 0 ? $max * 1.1 : 1;
	my @segments = ([]);
	foreach my $s (@samples) {
		if (!defined $s->[1]) {
			push @segments, [] if @{ $segments[-1] };
			next;
		}
		my $pt = [ sprintf('%.1f', $x->($s->[0])), sprintf('%.1f', $rtt_bottom - $s->[1] * ($rtt_bottom - $rtt_top) / $scale) ];
		push @rtt, $pt;
		push @{ $segments[-1] }, $pt;
	}

	my $svg = qq{<svg xmlns="http://www.w3.org/2000/svg" class="connectd-timeline" width="$W" height="$H" viewBox="0 0 $W $H" role="img" aria-label="} . h(L('connectd timeline')) . qq{">\n};
	$svg .= qq{<rect x="$left" y="$band_y" width="$pw" height="$band_h" fill="#eeeeee"/>\n};
	foreach my $b (@bands) {
		my $title = sprintf('%s %s-%s', defined $b->{'profile'} ? $b->{'profile'} : L('connectd offline'), hhmm($b->{'from'}), hhmm($b->{'to'}));
		$svg .= qq{<rect class="band" x="$b->{x}" y="$band_y" width="$b->{w}" height="$band_h" fill="$b->{colour}"><title>} . h($title) . qq{</title></rect>\n};
	}
	$svg .= qq{<line x1="$left" y1="$rtt_bottom" x2="} . ($left + $pw) . qq{" y2="$rtt_bottom" stroke="#999999"/>\n};
	foreach my $seg (@segments) {
		next unless @$seg;
		if (@$seg == 1) {
			$svg .= qq{<circle class="rtt" cx="$seg->[0][0]" cy="$seg->[0][1]" r="2" fill="#333399"/>\n};
			next;
		}
		my $pts = join(' ', map { "$_->[0],$_->[1]" } @$seg);
		$svg .= qq{<polyline class="rtt" fill="none" stroke="#333399" stroke-width="1.5" points="$pts"/>\n};
	}
	foreach my $s (@switches) {
		$svg .= qq{<line class="switch" x1="$s->{x}" y1="12" x2="$s->{x}" y2="$rtt_bottom" stroke="#993333" stroke-width="1.5"><title>} . h($s->{'text'}) . qq{</title></line>\n};
	}
	# Four ticks (every 6 hours of a day), labelled in local time; the RTT scale on the left.
	for (my $k = 0; $k <= 4; $k++) {
		my $t = $start + $k * $span / 4;
		my $tx = sprintf('%.1f', $x->($t));
		my $anchor = $k == 0 ? 'start' : $k == 4 ? 'end' : 'middle';
		$svg .= qq{<text x="$tx" y="} . ($H - 6) . qq{" font-size="11" text-anchor="$anchor">} . h(hhmm($t)) . qq{</text>\n};
	}
	$svg .= qq{<text x="2" y="} . ($rtt_top + 4) . qq{" font-size="10">} . h(sprintf($scale < 10 ? '%.1f ms' : '%.0f ms', $scale)) . qq{</text>\n};
	$svg .= qq{<text x="2" y="$rtt_bottom" font-size="10">0 ms</text>\n};
	$svg .= qq{<text x="2" y="} . ($band_y + 15) . qq{" font-size="10">} . h(L('connectd uplink')) . qq{</text>\n};
	$svg .= "</svg>\n";

	my %rank;
	my $r = 0;
	$rank{$_} //= $r++ foreach (@{ $order || [] }, sort keys %colour);
	my @legend = map { { profile => $_, colour => $colour{$_} } } sort { $rank{$a} <=> $rank{$b} } keys %colour;
	return { bands => \@bands, switches => \@switches, rtt => \@rtt, svg => $svg, legend => \@legend };
}

# Checks the policy form against what connectd reports and returns (\@pairs, \@errors):
# only changed values are handed on; a value outside the safe charset is refused here
# with the field's name, before anything runs.
sub policy_changes {
	my ($params, $current) = @_;
	my (@pairs, @errors);
	my %cur = map { $_->{'key'} => $_->{'value'} } grep { ref $_ eq 'HASH' } @{ $current || [] };
	foreach my $f (@POLICY_FORM) {
		my $key = $f->[0];
		next unless defined $params->{$key};
		my $v = $params->{$key};
		$v =~ s/^\s+|\s+$//g;
		if ($v !~ $VALUE_RE) {
			push @errors, sprintf('%s (%s): %s', L("connectd key $key"), $key, L('connectd bad characters'));
			next;
		}
		next if defined $cur{$key} && $cur{$key} eq $v;
		push @pairs, "$key=$v";
	}
	return (\@pairs, \@errors);
}

###############################################################################
# The helper

# Runs connectdctrl ARGS without a shell. Returns (exit code, stdout, stderr).
sub ctrl {
	my @args = @_;
	pipe(my $out_r, my $out_w) or return (1, '', "pipe: $!");
	pipe(my $err_r, my $err_w) or return (1, '', "pipe: $!");
	my $pid = fork();
	return (1, '', "fork: $!") unless defined $pid;
	if ($pid == 0) {
		close $out_r;
		close $err_r;
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>&', $out_w);
		open(STDERR, '>&', $err_w);
		{ no warnings q(exec); exec { $CTRL } $CTRL, @args; }
		print STDERR "cannot run $CTRL: $!\n";
		POSIX::_exit(127);
	}
	close $out_w;
	close $err_w;
	# The outputs are small (a status object, a message); read stderr after stdout.
	local $/;
	my $out = <$out_r> // '';
	my $err = <$err_r> // '';
	close $out_r;
	close $err_r;
	waitpid($pid, 0);
	return ($? >> 8, $out, $err);
}

sub ctrl_json {
	my ($rc, $out, $err) = ctrl(@_);
	return (undef, $err || "exit $rc") if $rc != 0;
	# Decoded as bytes, like every other string of the page (the language files are UTF-8
	# bytes too): a name with umlauts is printed back as the same UTF-8.
	my $v = eval { JSON::PP->new->decode($out) };
	return (undef, 'not JSON: ' . ($@ || '')) unless ref $v;
	return ($v, undef);
}

###############################################################################
# The page

sub main {
	require '/var/ipfire/general-functions.pl';
	require "${General::swroot}/lang.pl";
	require "${General::swroot}/header.pl";

	my %cgiparams = ();
	my @errors;
	my $info = '';

	&Header::showhttpheaders();
	# IPFire's getcgihash fills the hash only for a POST whose referer is this server
	# (header.pl:598-610): a link or a foreign page cannot make the box switch.
	&Header::getcgihash(\%cgiparams);
	my $action = $cgiparams{'ACTION'} // '';

	my $ok = eval {
		if ($action ne '') {
			my @args = action_args($action, \%cgiparams, \@errors);
			if (@args && !@errors) {
				my ($rc, $out, $err) = ctrl(@args);
				if ($rc == 0) {
					$info = $out;
				} else {
					push @errors, refused_message($action, $err || $out, $rc);
				}
			}
		}
		1;
	};
	push @errors, L('connectd internal error') unless $ok;

	my ($st, $st_err) = ctrl_json('status');
	# A supervisor that is just exiting (after a Disconnect) or starting may drop the
	# connection: ask once more, connectd then answers from the files.
	if (!$st) {
		sleep 1;
		($st, $st_err) = ctrl_json('status');
	}
	my ($hist) = ctrl_json('history');
	my ($pol) = ctrl_json('policy');
	my $now = time();

	&Header::openpage(L('connectd title'), 1, '');
	&Header::openbigbox('100%', 'left', '', '');
	&Header::errorbox(map { h($_) } @errors) if @errors;
	if ($info ne '') {
		&Header::openbox('100%', 'left', L('connectd done'));
		print '<p class="connectd-info">' . h($info) . "</p>\n";
		&Header::closebox();
	}
	# Whatever a status holds, the administrator gets IPFire's error box, not a Perl error.
	unless (eval { render($st, $st_err, $hist, $pol, $now, \%cgiparams); 1 }) {
		&Header::errorbox(h(L('connectd internal error')));
	}
	&Header::closebigbox();
	&Header::closepage();
}

# The connectdctrl arguments for a form's ACTION, or () with an error pushed.
sub action_args {
	my ($action, $p, $errors) = @_;
	if ($action eq 'failover') {
		my $prof = $p->{'PROFILE'} // '';
		return ('failover', $prof) if $prof =~ $PROFILE_RE;
		push @$errors, sprintf('%s: %s', L('connectd profile'), L('connectd bad profile'));
		return ();
	}
	return ('failback') if $action eq 'failback';
	if ($action eq 'auto') {
		my $m = $p->{'MODE'} // '';
		return ('auto', $m) if $m eq 'on' || $m eq 'off';
		push @$errors, sprintf('%s: %s', L('connectd automatic'), L('connectd bad mode'));
		return ();
	}
	return ('connect') if $action eq 'connect';
	return ('disconnect') if $action eq 'disconnect';
	if ($action eq 'policy') {
		my ($pol) = ctrl_json('policy');
		my ($pairs, $errs) = policy_changes($p, ref $pol eq 'HASH' ? $pol->{'keys'} : []);
		push @$errors, @$errs;
		return () if @$errs;
		unless (@$pairs) {
			push @$errors, L('connectd nothing changed');
			return ();
		}
		return ('policy-set', @$pairs);
	}
	push @$errors, sprintf('ACTION: %s', L('connectd bad action'));
	return ();
}

# An error from connectd, naming the field when it names a policy key.
sub refused_message {
	my ($action, $msg, $rc) = @_;
	$msg =~ s/^\s+|\s+$//g;
	$msg =~ s/^connectd(ctrl)?: //;
	if ($action eq 'policy') {
		foreach my $f (@POLICY_FORM) {
			my $key = $f->[0];
			if ($msg =~ /\b\Q$key\E\b/) {
				return sprintf('%s (%s): %s', L("connectd key $key"), $key, $msg);
			}
		}
	}
	return sprintf('%s (%s %d)', $msg ne '' ? $msg : L('connectd failed'), L('connectd exit code'), $rc);
}

sub form_start {
	my $action = shift;
	return qq{<form method="post" action="/cgi-bin/connectd.cgi" style="display:inline">}
		. qq{<input type="hidden" name="ACTION" value="} . h($action) . qq{"/>};
}

sub button {
	my ($label, $name, $extra) = @_;
	$extra //= '';
	return qq{<input type="submit" class="connectd-$name" value="} . h($label) . qq{"$extra/>};
}

# The page body below the headers, printed box by box.
sub render {
	my ($st, $st_err, $hist, $pol, $now, $params) = @_;
	my $box = sub {
		my ($title, $body) = @_;
		&Header::openbox('100%', 'left', $title);
		print $body;
		&Header::closebox();
	};

	unless (ref $st eq 'HASH') {
		$box->(L('connectd status'), '<p>' . h(L('connectd no status')) . ': ' . h($st_err // '') . "</p>\n");
		return;
	}
	my $red = ref $st->{'red'} eq 'HASH' ? $st->{'red'} : {};
	my $health = ref $st->{'health'} eq 'HASH' ? $st->{'health'} : {};
	my $chain = ref $st->{'chain'} eq 'ARRAY' ? $st->{'chain'} : [];
	my $pretests = ref $hist eq 'HASH' && ref $hist->{'pretests'} eq 'HASH' ? $hist->{'pretests'} : {};
	my $traffic = ref $st->{'traffic'} eq 'HASH' ? $st->{'traffic'} : {};

	# Status: the state in words, then the facts.
	my $words = state_words($st, $now, $hist);
	my $b = qq{<p class="connectd-state"><strong>} . h($words) . "</strong></p>\n";
	my $on_backup = defined $st->{'active_profile'} && defined $st->{'primary_profile'} && $st->{'active_profile'} ne $st->{'primary_profile'};
	if ($st->{'running'} && $on_backup) {
		my $full = primary_failure($st, last_failover($st));
		$b .= '<p class="connectd-why"><small>' . h($full) . "</small></p>\n" if $full ne short_reason($full);
	}
	$b .= qq{<table class="tbl" width="100%">\n};
	my $row = sub { $b .= '<tr><td width="30%">' . h($_[0]) . '</td><td>' . $_[1] . "</td></tr>\n" };
	$row->(L('connectd active profile'), h(profile_label($st->{'active_profile'}, $st->{'active_display_name'})));
	$row->(L('connectd primary profile'), h(profile_label($st->{'primary_profile'}, $st->{'primary_display_name'})));
	$row->(L('connectd automatic'), h($st->{'auto'} ? L('connectd on') : L('connectd off')) . ($st->{'pinned'} ? ' (' . h(L('connectd pinned')) . ')' : ''));
	$row->(L('connectd red'), h(sprintf('%s %s, %s %s', $red->{'iface'} // '-', $red->{'active'} ? L('connectd up') : L('connectd down'), L('connectd address'), $red->{'local_ip'} // '-')));
	my $gw = ref $health->{'gateway'} eq 'HASH' ? $health->{'gateway'} : undef;
	$row->(L('connectd gateway'), h(($red->{'gateway'} // '-') . ($gw ? ', ' . (defined $gw->{'rtt_ms'} ? num1($gw->{'rtt_ms'}) . ' ms' : L('connectd no reply')) : '')));
	$row->(L('connectd throughput'), h(sprintf('rx %s Mbit/s, tx %s Mbit/s (60 s: rx %s, tx %s)',
		num1($traffic->{'rx_mbps'}), num1($traffic->{'tx_mbps'}), num1($traffic->{'rx_mbps_avg'}), num1($traffic->{'tx_mbps_avg'}))));
	$row->(L('connectd switches'), h(($st->{'switch_count'} // 0)));
	$b .= "</table>\n";
	$box->(L('connectd status'), $b);

	# Health: every target's RTT and loss.
	$b = qq{<table class="tbl" width="100%"><tr><th align="left">} . h(L('connectd target')) . '</th><th align="left">RTT</th><th align="left">' . h(L('connectd average')) . '</th><th align="left">' . h(L('connectd loss')) . "</th></tr>\n";
	my @targets = ref $health->{'targets'} eq 'ARRAY' ? @{ $health->{'targets'} } : ();
	push @targets, { %$gw, host => ($gw->{'host'} // '') . ' (' . L('connectd gateway') . ')' } if $gw;
	foreach my $t (@targets) {
		next unless ref $t eq 'HASH';
		$b .= '<tr class="connectd-target"><td>' . h($t->{'host'}) . '</td><td>'
			. h(defined $t->{'rtt_ms'} ? num1($t->{'rtt_ms'}) . ' ms' : L('connectd no reply') . (defined $t->{'error'} ? ": $t->{'error'}" : ''))
			. '</td><td>' . h(defined $t->{'avg_rtt_ms'} ? num1($t->{'avg_rtt_ms'}) . ' ms' : '-')
			. '</td><td>' . h(defined $t->{'loss_pct'} ? sprintf('%.0f %%', $t->{'loss_pct'}) : '-') . "</td></tr>\n";
	}
	$b .= "</table>\n";
	$b .= '<p>' . h(L('connectd verdict')) . ': ' . h($health->{'verdict'} // '-') . (defined $health->{'reason'} ? ' (' . h($health->{'reason'}) . ')' : '') . "</p>\n";
	$box->(L('connectd health'), $b);

	# The chain, with each profile's type, device and last pre-test, and the actions.
	$b = qq{<table class="tbl" width="100%"><tr><th align="left">} . join('</th><th align="left">', map { h(L($_)) }
		('connectd profile', 'connectd type', 'connectd device', 'connectd last pretest', 'connectd action')) . "</th></tr>\n";
	foreach my $c (@$chain) {
		next unless ref $c eq 'HASH' && defined $c->{'profile'};
		my $name = $c->{'profile'};
		my $pt = $pretests->{$name};
		my $lp = $c->{'last_pretest'};
		my $ptext = ref $pt eq 'HASH'
			? sprintf('%s %s%s', hhmm($pt->{'at'}), $pt->{'result'} // '', defined $pt->{'detail'} && $pt->{'detail'} ne '' ? " ($pt->{'detail'})" : '')
			: '-';
		# The running supervisor's own record (status --json chain[].last_pretest) wins.
		$ptext = sprintf('%s (%ss ago)', $lp->{'result'} // '-', $lp->{'secs_ago'} // '?')
			if ref $lp eq 'HASH';
		my $role = $c->{'role'} // '';
		my $act = '';
		if (defined $st->{'active_profile'} && $name eq $st->{'active_profile'}) {
			$act = h(L('connectd carries traffic'));
		} elsif ($name =~ $PROFILE_RE) {
			$act = form_start('failover') . qq{<input type="hidden" name="PROFILE" value="} . h($name) . '"/>'
				. button(sprintf(L('connectd fail over to'), $name), 'failover') . '</form>';
		}
		$b .= '<tr class="connectd-chain"><td>' . h(profile_label($name, $c->{'display_name'})) . ($role ne '' ? ' <em>' . h(L("connectd role $role")) . '</em>' : '')
			. '</td><td>' . h($c->{'type'} // '-') . '</td><td>' . h($c->{'device'} // '-')
			. '</td><td>' . h($ptext) . "</td><td>$act</td></tr>\n";
	}
	$b .= "</table>\n<p>\n";
	my $on_primary = defined $st->{'active_profile'} && defined $st->{'primary_profile'} && $st->{'active_profile'} eq $st->{'primary_profile'};
	$b .= form_start('failback') . button(L('connectd fail back now'), 'failback', $on_primary ? ' disabled="disabled"' : '') . "</form>\n";
	$b .= form_start('auto') . '<input type="hidden" name="MODE" value="' . ($st->{'auto'} ? 'off' : 'on') . '"/>'
		. button($st->{'auto'} ? L('connectd automatic off') : L('connectd automatic on'), 'auto') . "</form>\n";
	$b .= form_start('connect') . button(L('connectd connect'), 'connect') . "</form>\n";
	$b .= form_start('disconnect') . button(L('connectd disconnect'), 'disconnect') . "</form>\n";
	$b .= "</p>\n";
	$box->(L('connectd chain'), $b);

	# The last 24 hours.
	if (ref $hist eq 'HASH') {
		my @order = map { $_->{'profile'} } grep { ref $_ eq 'HASH' && defined $_->{'profile'} } @$chain;
		my $tl = timeline($hist, $hist->{'now'} // $now, \@order);
		my $hour = timeline($hist, $hist->{'now'} // $now, \@order, 3600);
		$b = $tl->{'svg'} . '<p><small>' . h(L('connectd last hour')) . "</small></p>\n" . $hour->{'svg'} . '<p class="connectd-legend">';
		foreach my $l (@{ $tl->{'legend'} }) {
			$b .= '<span style="background-color:' . h($l->{'colour'}) . '">&nbsp;&nbsp;&nbsp;</span> ' . h($l->{'profile'}) . ' &nbsp; ';
		}
		$b .= '<span style="border-left:2px solid #993333">&nbsp;</span>' . h(L('connectd switch')) . ' &nbsp; '
			. '<span style="color:#333399">&#8212;</span> ' . h(L('connectd rtt of active')) . "</p>\n";
		$box->(L('connectd last 24 hours'), $b);
	}

	# The last switches, newest first.
	$b = qq{<table class="tbl" width="100%"><tr><th align="left">} . join('</th><th align="left">', map { h(L($_)) }
		('connectd time', 'connectd from', 'connectd to', 'connectd kind', 'connectd reason')) . "</th></tr>\n";
	my @ts = ref $st->{'transitions'} eq 'ARRAY' ? reverse @{ $st->{'transitions'} } : ();
	splice(@ts, 10) if @ts > 10;
	foreach my $t (@ts) {
		next unless ref $t eq 'HASH';
		$b .= '<tr class="connectd-switch"><td>' . h(defined $t->{'at'} ? POSIX::strftime('%Y-%m-%d %H:%M:%S', localtime($t->{'at'})) : '-')
			. '</td><td>' . h($t->{'from'} // '-') . '</td><td>' . h($t->{'to'}) . '</td><td>' . h($t->{'kind'})
			. '</td><td>' . h($t->{'reason'}) . "</td></tr>\n";
	}
	$b .= "</table>\n";
	$box->(L('connectd last switches'), $b);

	# The policy form: values as connectd reports them; connectd validates what comes back.
	if (ref $pol eq 'HASH' && ref $pol->{'keys'} eq 'ARRAY') {
		my %cur = map { $_->{'key'} => $_ } grep { ref $_ eq 'HASH' } @{ $pol->{'keys'} };
		$b = form_start('policy') . qq{<table class="tbl" width="100%">\n};
		foreach my $f (@POLICY_FORM) {
			my ($key, $kind) = @$f;
			my $c = $cur{$key} || {};
			# After a refused Save, show what the administrator typed.
			my $v = defined $params->{$key} && ($params->{'ACTION'} // '') eq 'policy' ? $params->{$key} : ($c->{'value'} // '');
			my $field;
			if ($kind eq 'onoff') {
				$field = qq{<select name="$key">} . join('', map {
					qq{<option value="$_"} . ($v eq $_ ? ' selected="selected"' : '') . '>' . h(L("connectd $_")) . '</option>'
				} ('on', 'off')) . '</select>';
			} else {
				$field = qq{<input type="text" name="$key" size="30" value="} . h($v) . '"/>';
			}
			$b .= '<tr><td width="40%">' . h(L("connectd key $key")) . " <small>($key)</small></td><td>$field"
				. (defined $c->{'default'} ? ' <small>' . h(L('connectd default')) . ': ' . h($c->{'default'}) . '</small>' : '') . "</td></tr>\n";
		}
		$b .= "</table>\n<p>" . button(L('connectd save'), 'save') . "</p></form>\n";
		$box->(L('connectd policy'), $b);
	}
	return;
}

main() unless caller;

1;
