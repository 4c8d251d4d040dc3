#!/bin/bash
###############################################################################
#                                                                             #
# connectd add-on for IPFire: uninstall                                       #
# Copyright (C) 2026 The connectd developers                                  #
# SPDX-License-Identifier: GPL-3.0-or-later                                   #
#                                                                             #
###############################################################################
#
# Run by pakfire as `cd /opt/pakfire/tmp && NAME=connectd ./uninstall.sh`
# (ipfire-2.x src/pakfire/lib/functions.pl:898). The reverse of install.sh:
# supervision stops (RED stays up, as on `connectd stop`), the pak's files go
# (remove_files, from /opt/pakfire/db/rootfiles/connectd), the link to our init
# script goes and IPFire's original connectd comes back exactly as it was.
# The user's data in /var/ipfire/connectd (settings, state, API token) is not in
# the rootfile and stays, as with tools/uninstall; IPFire's backup keeps it through
# /var/ipfire/backup/addons/includes/connectd.
#
# CONNECTD_PAK_ROOT: the test seam of install.sh (unset on IPFire).

ROOT="${CONNECTD_PAK_ROOT:-}"
# shellcheck source=/dev/null
. "${ROOT}/opt/pakfire/lib/functions.sh"

INIT="${ROOT}/etc/rc.d/init.d/connectd"

stop_service "${NAME}"
remove_files

# Only our link goes; a file there is someone else's (e.g. a core update's).
if [ -L "${INIT}" ] && [ "$(readlink "${INIT}")" = "../../../usr/lib/connectd/initscript" ]; then
	rm -v "${INIT}"
fi
if [ -e "${INIT}.ipfire-orig" ] && [ ! -e "${INIT}" ]; then
	mv -v "${INIT}.ipfire-orig" "${INIT}"
fi

# Directories extract_files may have created and the rootfile cannot list (a user's
# hooks live in failover.d): removed only when empty.
for d in etc/rc.d/init.d/networking/failover.d usr/share/bash-completion/completions \
	usr/share/bash-completion; do
	[ -d "${ROOT}/${d}" ] && rmdir --ignore-fail-on-non-empty "${ROOT}/${d}"
done

# The language cache forgets the web UI page's strings (src/paks/wio/uninstall.sh).
"${ROOT}/usr/local/bin/update-lang-cache"
exit 0
