# STAND-IN for IPFire's /var/ipfire/general-functions.pl, used only by the lab's web UI
# test (tests/wui.rs). It provides the little that connectd.cgi and the stand-in
# header.pl and lang.pl use; it is not IPFire's code. IPFire's file:
# config/cfgroot/general-functions.pl (readhash at :303).
# Copyright (C) 2026 The connectd developers
# SPDX-License-Identifier: GPL-3.0-or-later
package General;

use strict;

$General::swroot = '/var/ipfire';

# KEY=VALUE lines into %$hash; quotes around a value removed (as IPFire's readhash does).
sub readhash {
	my ($file, $hash) = @_;
	open(my $fh, '<', $file) or return;
	while (my $line = <$fh>) {
		chomp $line;
		next if $line =~ /^\s*(#|$)/;
		my ($k, $v) = split(/=/, $line, 2);
		next unless defined $v && $k =~ /^[A-Za-z_][A-Za-z0-9_]*$/;
		$v =~ s/^'(.*)'$/$1/;
		$hash->{$k} = $v;
	}
	close $fh;
}

1;
