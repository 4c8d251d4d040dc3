# STAND-IN for IPFire's /var/ipfire/header.pl, used only by the lab's web UI test
# (tests/wui.rs): it provides the few functions connectd.cgi calls, with IPFire's names,
# arguments and HTML shape (config/cfgroot/header.pl), and a small inline style instead
# of IPFire's theme. It is not IPFire's code; the page runs against the real header.pl
# on a box.
# Copyright (C) 2026 The connectd developers
# SPDX-License-Identifier: GPL-3.0-or-later
package Header;

use strict;
use CGI ();

$| = 1;

# header.pl:488-506: the headers of every page, overridable.
sub showhttpheaders {
	my $overwrites = shift || {};
	my %headers = (
		'Content-Type'  => 'text/html; charset=UTF-8',
		'Cache-Control' => 'private',
		%$overwrites,
	);
	foreach my $h (sort keys %headers) {
		print "$h: $headers{$h}\n";
	}
	print "\n";
}

# header.pl:180-272 (without the menu, the theme and the manual link).
sub openpage {
	my ($title, $boh, $extrahead) = @_;
	$extrahead //= '';
	my $lang = $Lang::language // 'en';
	print <<END;
<!DOCTYPE html>
<html lang="$lang">
<head>
<title>ipfire.lab - $title</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"/>
<style>
body { font-family: "DejaVu Sans", sans-serif; font-size: 13px; margin: 0; background: #f0f0f0; }
#header { background: #363636; color: #fff; padding: 8px 16px; }
#header h1 { margin: 0; font-size: 20px; }
.bigbox { padding: 8px 16px; }
#main_header h1 { font-size: 18px; margin: 6px 0 10px 0; }
section.is-box { background: #fff; border: 1px solid #ccc; padding: 6px 12px 10px 12px; margin-bottom: 10px; }
section.is-box h2.title { font-size: 14px; margin: 4px 0 8px 0; }
section.is-error { border-color: #993333; background: #fbeaea; }
table.tbl td, table.tbl th { padding: 2px 6px; border-bottom: 1px solid #eee; }
form { margin-right: 4px; }
</style>
$extrahead
</head>
<body>
<div id="header"><h1>IPFire_ &dash; stand-in header (connectd lab)</h1></div>
<div class="bigbox fixed"><div id="main_inner" class="fixed"><div id="main_header"><h1>$title</h1></div>
END
}

# header.pl:274-299.
sub closepage {
	print "</div></div>\n<div id=\"footer\" class=\"bigbox fixed\">stand-in footer</div>\n</body>\n</html>\n";
}

# header.pl:301-310: empty in IPFire too.
sub openbigbox { }
sub closebigbox { }

# header.pl:334-352.
sub openbox {
	my ($width, $align, $title, @extra) = @_;
	my @classes = ('section', 'is-box', @extra);
	print "<section class=\"@classes\">\n";
	print "\t<h2 class=\"title\">$title</h2>\n" if $title;
}

# header.pl:354-356.
sub closebox {
	print "</section>";
}

# header.pl:358-376: the messages are printed as given (callers escape them).
sub errorbox {
	my @errors = grep { defined $_ && $_ ne '' } @_;
	return unless @errors;
	openbox('100%', 'left', 'Oops, something went wrong', 'is-error');
	print "<ul>\n";
	print "<li>$_</li>\n" foreach @errors;
	print "</ul>\n";
	closebox();
}

# header.pl:594-625: only a POST whose referer names this server fills the hash; values
# are trimmed, multi-values joined with '|'.
sub getcgihash {
	my ($hash, $params) = @_;
	my $cgi = CGI->new();
	$hash->{'__CGI__'} = $cgi;
	return if (($ENV{'REQUEST_METHOD'} // '') ne 'POST');
	$CGI::DISABLE_UPLOADS = 1;
	$CGI::POST_MAX = 1024 * 1024;
	my ($referer) = (($cgi->referer() // '') =~ m/^https?\:\/\/([^\/]+)/);
	my ($servername) = (($cgi->url() // '') =~ m/^https?\:\/\/([^\/]+)/);
	return if (!defined $referer || !defined $servername || $referer ne $servername);
	my %temp = $cgi->Vars();
	foreach my $key (keys %temp) {
		$hash->{$key} = $temp{$key};
		$hash->{$key} =~ s/\0/|/g;
		$hash->{$key} =~ s/^\s*(.*?)\s*$/$1/;
	}
	return;
}

1;
