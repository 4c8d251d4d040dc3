#!/bin/bash
###############################################################################
#                                                                             #
# connectd add-on for IPFire: install                                         #
# Copyright (C) 2026 The connectd developers                                  #
# SPDX-License-Identifier: GPL-3.0-or-later                                   #
#                                                                             #
###############################################################################
#
# Run by pakfire as `cd /opt/pakfire/tmp && NAME=connectd ./install.sh`
# (ipfire-2.x src/pakfire/lib/functions.pl:819), with the pak unpacked in the
# current directory. What tools/install does on a shell, in IPFire's add-on idiom
# (src/paks/default/install.sh, src/paks/wio/install.sh):
#   - IPFire's own /etc/rc.d/init.d/connectd (core rootfile "initscripts") is kept
#     aside as connectd.ipfire-orig (a rename: content, mode, owner, mtime untouched)
#     and replaced by a link to ours, /usr/lib/connectd/initscript. The pak does not
#     ship the init script at IPFire's path: a core update or the build tree would
#     otherwise mix the two. uninstall.sh puts the original back.
#   - the boot start: the network script starts connectd for pppd types as before;
#     red.up/99-connectd (in the pak) starts it whenever RED comes up, on every RED
#     type, and rc3.d/S21connectd (in the pak) at boot, also when RED did not come up.
#   - the files: extract_files; the rootfile is config/rootfiles/packages/connectd
#     (with the web UI page, its menu entry and strings, and its setuid helper
#     connectdctrl, 4750 root:nobody as the pak holds it).
#   - supervision is started now only when RED is up and failover is enabled
#     (otherwise the next RED start does it, as at boot).
#
# CONNECTD_PAK_ROOT is a test seam (tests/pak.rs): every path below is taken under
# it. It is unset on IPFire, where the paths are exactly IPFire's.

ROOT="${CONNECTD_PAK_ROOT:-}"
# shellcheck source=/dev/null
. "${ROOT}/opt/pakfire/lib/functions.sh"

INIT="${ROOT}/etc/rc.d/init.d/connectd"
OURS="../../../usr/lib/connectd/initscript"

# A file there is IPFire's (ours is a link): kept aside. If one is kept already, a core
# update has since put IPFire's script back over our link: the newer one is kept.
if [ -e "${INIT}" ] && [ ! -L "${INIT}" ]; then
	mv -fv "${INIT}" "${INIT}.ipfire-orig"
fi

extract_files

ln -svfn "${OURS}" "${INIT}"

# The web UI page's strings (var/ipfire/addon-lang/connectd.*.pl) into the language
# cache, as IPFire's add-ons with a page do (src/paks/wio/install.sh).
"${ROOT}/usr/local/bin/update-lang-cache"

# Supervision now, if RED is up and failover is on (a failover-off box waits for its
# next RED start, like IPFire's own connectd).
if [ -e "${ROOT}/var/ipfire/red/active" ] \
	&& grep -qiE "^FAILOVER_ENABLED='?(on|yes|true|1)'?$" "${ROOT}/var/ipfire/connectd/settings" 2>/dev/null; then
	start_service --background "${NAME}"
fi
exit 0
