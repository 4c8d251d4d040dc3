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
