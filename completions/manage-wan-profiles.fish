# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_manage_wan_profiles_global_optspecs
	string join \n root= v/verbose h/help V/version
end

function __fish_manage_wan_profiles_needs_command
	# Figure out if the current invocation already has a command.
	set -l cmd (commandline -opc)
	set -e cmd[1]
	argparse -s (__fish_manage_wan_profiles_global_optspecs) -- $cmd 2>/dev/null
	or return
	if set -q argv[1]
		# Also print the command, so this can be used to figure out what it is.
		echo $argv[1]
		return 1
	end
	return 0
end

function __fish_manage_wan_profiles_using_subcommand
	set -l cmd (__fish_manage_wan_profiles_needs_command)
	test -z "$cmd"
	and return 1
	contains -- $cmd[1] $argv
end

complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -s V -l version -d 'Print version'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "list" -d 'List the profiles'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "create" -d 'Create a profile (asks on a terminal; takes flags otherwise)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "test" -d 'Pre-test a profile without disturbing the active uplink'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "activate" -d 'Make NAME the active profile (network stop red, switch files, network start red)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "status" -d 'Show the active profile and the state of RED'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "show" -d 'Show a profile (the password masked)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "delete" -d 'Delete a profile (a WUI slot 1..5 is emptied, as the WUI does)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand list" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand list" -l json -d 'Machine-readable output'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand list" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand list" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l type -d 'TYPE: pppoe, vdsl, pptp, qmi, modem, serial, pppoeatm, pptpatm, DHCP, STATIC' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l device -d 'DEVICE: the NIC, or the wwan interface for QMI' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l profile-name -d 'PROFILENAME shown by the WUI (default: NAME)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l ip -d 'IP (STATIC)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l netmask -d 'NETMASK (STATIC)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l gateway -d 'GATEWAY (STATIC)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l dns1 -d 'DNS1 (STATIC)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l dns2 -d 'DNS2 (STATIC)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l username -d 'USERNAME (dial types)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l apn -d 'APN (QMI)' -r
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -l password-stdin -d 'Read the password from stdin (one line)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand create" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand test" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand test" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand test" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand activate" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand activate" -l no-wait -d 'Do not wait for RED to come up'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand activate" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand activate" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand status" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand status" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand status" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand show" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand show" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand show" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand delete" -l root -d 'Resolve every IPFire path under DIR (env CONNECTD_ROOT; default /)' -r -F
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand delete" -s v -l verbose -d 'Log debug details on stderr'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand delete" -s h -l help -d 'Print help'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "list" -d 'List the profiles'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "create" -d 'Create a profile (asks on a terminal; takes flags otherwise)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "test" -d 'Pre-test a profile without disturbing the active uplink'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "activate" -d 'Make NAME the active profile (network stop red, switch files, network start red)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "status" -d 'Show the active profile and the state of RED'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "show" -d 'Show a profile (the password masked)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "delete" -d 'Delete a profile (a WUI slot 1..5 is emptied, as the WUI does)'
complete -c manage-wan-profiles -n "__fish_manage_wan_profiles_using_subcommand help; and not __fish_seen_subcommand_from list create test activate status show delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
