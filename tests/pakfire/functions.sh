#!/bin/bash
# Copyright (C) 2026 The connectd developers
# SPDX-License-Identifier: GPL-3.0-or-later
#
# A stand-in for IPFire's /opt/pakfire/lib/functions.sh, for tests/pak.rs only: the
# functions our add-on scripts call, doing what IPFire's do
# (ipfire-2.x src/pakfire/lib/functions.sh:22-125) but under CONNECTD_PAK_ROOT instead of
# /. Services are not started: start_service and stop_service append their arguments to
# CONNECTD_PAK_CALLS (a file outside the root), as do make_backup and restore_backup
# (IPFire's call backupctrl, which a test root does not have).

R="${CONNECTD_PAK_ROOT:?the test seam CONNECTD_PAK_ROOT is not set}"

# IPFire's extraction options (functions.sh:24-32).
TAR_OPTIONS=(
	--acls
	--xattrs
	--xattrs-include='*'
	--no-overwrite-dir
	--no-delay-directory-restore
	--preserve-permissions
	--numeric-owner
)

extract_files() {
	echo "Extracting files..."
	tar -xavf "${R}"/opt/pakfire/tmp/files* "${TAR_OPTIONS[@]}" -C "${R}/"
	echo "...Finished."
}

extract_backup_includes() {
	echo "Extracting backup includes..."
	tar -xavf "${R}"/opt/pakfire/tmp/files* "${TAR_OPTIONS[@]}" -C "${R}/" \
		var/ipfire/backup/addons/includes
	echo "...Finished."
}

# Every line of the installed rootfile, rm -rf'd (functions.sh:50-56).
remove_files() {
	local i
	echo "Removing files..."
	while IFS= read -r i; do
		[ -n "${i}" ] && rm -rfv "${R:?}/${i}"
	done <"${R}/opt/pakfire/db/rootfiles/${NAME}"
	echo "...Finished."
}

called() { echo "$*" >>"${CONNECTD_PAK_CALLS:-/dev/null}"; }
make_backup() { called make_backup "$@"; }
restore_backup() { called restore_backup "$@"; }
start_service() { called start_service "$@"; }
stop_service() { called stop_service "$@"; }
