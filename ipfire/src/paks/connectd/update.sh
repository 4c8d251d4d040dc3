#!/bin/bash
###############################################################################
#                                                                             #
# connectd add-on for IPFire: update                                          #
# Copyright (C) 2026 The connectd developers                                  #
# SPDX-License-Identifier: GPL-3.0-or-later                                   #
#                                                                             #
###############################################################################
#
# Run by pakfire as `cd /opt/pakfire/tmp && NAME=connectd ./update.sh`
# (ipfire-2.x src/pakfire/lib/functions.pl:876), IPFire's default update
# (src/paks/default/update.sh): the new backup include first, then the old files
# out and the new ones in. The original connectd stays kept aside across the two
# (uninstall puts it back, install keeps it again).

ROOT="${CONNECTD_PAK_ROOT:-}"
# shellcheck source=/dev/null
. "${ROOT}/opt/pakfire/lib/functions.sh"

extract_backup_includes
./uninstall.sh
./install.sh
