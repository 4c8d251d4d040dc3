# shellcheck shell=bash
# Shared helpers of tools/lab and of the lab's stand-in IPFire scripts (network, pppd,
# ip-up, ip-down, dhcpcd-hook): logging and process handling. Sourced, never run. Installed
# into ROOT/usr/lib/cdlab/ by `tools/lab up`. Profile and box settings are read by our
# binaries (manage-wan-profiles, connectd); only the network stand-in reads them itself,
# as IPFire's network script does (see its readhash).

# lab_log TAG MESSAGE...: one timestamped line on stderr (the caller's log file).
lab_log() {
	local tag=$1
	shift
	printf '%(%H:%M:%S)T %s[%d]: %s\n' -1 "$tag" "$$" "$*" >&2
}

# alive_as PID COMM: true when PID runs (not a zombie) and its /proc comm is COMM (a
# recycled PID fails).
alive_as() {
	local pid=$1 comm stat
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	[ "$comm" = "$2" ] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ $stat != Z* ]]
}

# read_pid FILE: prints the number in FILE, or nothing.
read_pid() {
	local pid=""
	[ -r "$1" ] && read -r pid <"$1"
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
	return 0
}

# stop_group PGID [SECONDS]: SIGTERM the process group, wait up to SECONDS (default 5)
# for it to be empty, then SIGKILL what is left.
stop_group() {
	local pgid=$1 secs=${2:-5} i
	[[ $pgid =~ ^[0-9]+$ ]] || return 0
	kill -TERM -- "-$pgid" 2>/dev/null || return 0
	for ((i = 0; i < secs * 10; i++)); do
		group_alive "$pgid" || return 0
		sleep 0.1
	done
	kill -KILL -- "-$pgid" 2>/dev/null || true
	for ((i = 0; i < 20; i++)); do
		group_alive "$pgid" || return 0
		sleep 0.1
	done
}

# group_alive PGID: true while some process that is not a zombie is in process group PGID
# (an exited process whose parent is slow to reap it counts as gone).
group_alive() {
	kill -0 -- "-$1" 2>/dev/null || return 1
	ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# proc_alive PID: true while PID runs and is not a zombie.
proc_alive() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}

# lab_conf ROOT: reads the lab's shortened IPFire timers from ROOT/usr/lib/cdlab/lab.conf
# (written by `tools/lab up`) into LAB_DHCP_TIMEOUT and LAB_CARRIER_WAIT; IPFire's values
# when the file or a line is missing.
# shellcheck disable=SC2034 # read by the scripts that source this file
lab_conf() {
	LAB_DHCP_TIMEOUT=60
	LAB_CARRIER_WAIT=30
	local line
	[ -r "$1/usr/lib/cdlab/lab.conf" ] || return 0
	while IFS= read -r line; do
		case $line in
		DHCP_TIMEOUT=*) [[ ${line#*=} =~ ^[0-9]{1,3}$ ]] && LAB_DHCP_TIMEOUT=${line#*=} ;;
		CARRIER_WAIT=*) [[ ${line#*=} =~ ^[0-9]{1,3}$ ]] && LAB_CARRIER_WAIT=${line#*=} ;;
		esac
	done <"$1/usr/lib/cdlab/lab.conf"
}

# run_subdir ROOT DIR: IPFire's run_subdir (src/initscripts/system/functions:718-733): every
# executable in ROOT/DIR in `ls -v` order, called with the verb its name's second
# dash-field names (S start, K stop, RS restart, RL reload, U up, D down), with none
# otherwise. The hooks inherit our environment (dhcpcd's $reason among it) plus
# CONNECTD_ROOT=ROOT: on a box the root is /, in the lab it is the lab's root, and our own
# hook (initscripts/red.up/99-connectd) finds the box through it. Their output goes to the
# caller's stderr (the lab log); like IPFire's, a failing hook does not stop the others.
run_subdir() {
	local root=$1 dir=$1/$2 i verb
	[ -d "$dir" ] || return 0
	while IFS= read -r i; do
		[ -f "$dir/$i" ] && [ -x "$dir/$i" ] || continue
		case $(printf '%s' "$i" | awk -F- '{ print $2 }') in
		S) verb=start ;;
		K) verb=stop ;;
		RS) verb=restart ;;
		RL) verb=reload ;;
		U) verb=up ;;
		D) verb=down ;;
		*) verb="" ;;
		esac
		lab_log run_subdir "$2$i ${verb}"
		CONNECTD_ROOT=$root "$dir/$i" ${verb:+"$verb"} >&2 </dev/null
	done < <(ls -v "$dir" 2>/dev/null)
	return 0
}
