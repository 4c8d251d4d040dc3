# STAND-IN for IPFire's /var/ipfire/lang.pl, used only by the lab's web UI test
# (tests/wui.rs); not IPFire's code. Like IPFire's (config/cfgroot/lang.pl:50-85) it reads
# LANGUAGE from main/settings and loads every addon-lang/*.en.pl, then *.LANG.pl over it.
# IPFire's own string tables (langs/en.pl) are not here: the page uses its own strings.
# Copyright (C) 2026 The connectd developers
# SPDX-License-Identifier: GPL-3.0-or-later
package Lang;

use strict;

%Lang::tr = ();
my %settings = ();
&General::readhash("${General::swroot}/main/settings", \%settings);
our $language = ($settings{'LANGUAGE'} // 'en') =~ /^([a-z]{2})$/ ? $1 : 'en';

my $dir = "${General::swroot}/addon-lang";
if (opendir(my $dh, $dir)) {
	my @files = sort readdir($dh);
	closedir($dh);
	foreach my $lg ('en', ($language ne 'en' ? ($language) : ())) {
		foreach my $file (grep { /^[A-Za-z0-9_.-]+\.\Q$lg\E\.pl$/ } @files) {
			# `do` runs the file in this package: its `%tr = (%tr, ...)` extends %Lang::tr.
			do "$dir/$file";
		}
	}
}

1;
