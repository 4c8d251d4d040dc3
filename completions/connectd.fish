# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_connectd_global_optspecs
	string join \n root= v/verbose h/help V/version
end

function __fish_connectd_needs_command
	# Figure out if the current invocation already has a command.
	set -l cmd (commandline -opc)
	set -e cmd[1]
	argparse -s (__fish_connectd_global_optspecs) -- $cmd 2>/dev/null
	or return
	if set -q argv[1]
		# Also print the command, so this can be used to figure out what it is.
		echo $argv[1]
		return 1
	end
	return 0
end

function __fish_connectd_using_subcommand
	set -l cmd (__fish_connectd_needs_command)
	test -z "$cmd"
	and return 1
	contains -- $cmd[1] $argv
end

complete -c connectd -n "__fish_connectd_needs_command" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_needs_command" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_needs_command" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_needs_command" -s V -l version -d 'Print version'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "start" -d 'Start supervising RED (returns at once; a running supervisor is left alone)'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "stop" -d 'Stop supervising (no redial)'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "reconnect" -d 'Reconnect RED (called by pppd\'s ip-down)'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "failover" -d 'Switch to PROFILE and pin it (automatic failback paused)'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "failback" -d 'Return to the primary profile'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "auto" -d 'Turn automatic failover/failback on or off'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "status" -d 'Show the supervisor\'s state'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "check" -d 'Run one probe round on the current RED now'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "history" -d 'The last 24 hours: which profile carried traffic, switches, RTT, pre-tests'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "policy" -d 'Show the failover policy, or change it (validated, written atomically, reloaded)'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "api-key" -d 'Create (or show) the HTTP API token'
complete -c connectd -n "__fish_connectd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c connectd -n "__fish_connectd_using_subcommand start" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand start" -l foreground -d 'Stay attached and log to stderr too'
complete -c connectd -n "__fish_connectd_using_subcommand start" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand start" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand stop" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand stop" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand stop" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand reconnect" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand reconnect" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand reconnect" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand failover" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand failover" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand failover" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand failback" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand failback" -l force -d 'Skip the pre-test of the primary'
complete -c connectd -n "__fish_connectd_using_subcommand failback" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand failback" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand auto" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand auto" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand auto" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand status" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand status" -l json -d 'Machine-readable output'
complete -c connectd -n "__fish_connectd_using_subcommand status" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand status" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand check" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand check" -l json -d 'Machine-readable output'
complete -c connectd -n "__fish_connectd_using_subcommand check" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand check" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand history" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand history" -l json -d 'Machine-readable output'
complete -c connectd -n "__fish_connectd_using_subcommand history" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand history" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and not __fish_seen_subcommand_from set help" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand policy; and not __fish_seen_subcommand_from set help" -l json -d 'Machine-readable output'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and not __fish_seen_subcommand_from set help" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and not __fish_seen_subcommand_from set help" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and not __fish_seen_subcommand_from set help" -f -a "set" -d 'Set KEY=VALUE pairs in connectd/settings; nothing is written if any is refused'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and not __fish_seen_subcommand_from set help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and __fish_seen_subcommand_from set" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand policy; and __fish_seen_subcommand_from set" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set KEY=VALUE pairs in connectd/settings; nothing is written if any is refused'
complete -c connectd -n "__fish_connectd_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c connectd -n "__fish_connectd_using_subcommand api-key" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c connectd -n "__fish_connectd_using_subcommand api-key" -s v -l verbose -d 'Log debug details too'
complete -c connectd -n "__fish_connectd_using_subcommand api-key" -s h -l help -d 'Print help'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "start" -d 'Start supervising RED (returns at once; a running supervisor is left alone)'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "stop" -d 'Stop supervising (no redial)'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "reconnect" -d 'Reconnect RED (called by pppd\'s ip-down)'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "failover" -d 'Switch to PROFILE and pin it (automatic failback paused)'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "failback" -d 'Return to the primary profile'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "auto" -d 'Turn automatic failover/failback on or off'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "status" -d 'Show the supervisor\'s state'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "check" -d 'Run one probe round on the current RED now'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "history" -d 'The last 24 hours: which profile carried traffic, switches, RTT, pre-tests'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "policy" -d 'Show the failover policy, or change it (validated, written atomically, reloaded)'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "api-key" -d 'Create (or show) the HTTP API token'
complete -c connectd -n "__fish_connectd_using_subcommand help; and not __fish_seen_subcommand_from start stop reconnect failover failback auto status check history policy api-key help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c connectd -n "__fish_connectd_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "set" -d 'Set KEY=VALUE pairs in connectd/settings; nothing is written if any is refused'
