/*
 * connectdctrl: the web UI's only way to reach connectd (setuid root helper).
 *
 * Copyright (C) 2026 The connectd developers
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * IPFire's web UI runs as `nobody`; connectd's control socket is root's (0600). IPFire
 * bridges that gap with small setuid helpers in /usr/local/bin (src/misc-progs/redctrl.c,
 * setuid.c:163 initsetuid) that clean their environment and accept a fixed command set.
 * This is ours, written in that style:
 *
 *   connectdctrl status | history | policy        read-only, JSON on stdout
 *   connectdctrl policy-set KEY=VALUE...          hand policy values to connectd
 *   connectdctrl failover PROFILE | failback | auto on|off
 *   connectdctrl connect | disconnect             IPFire's redctrl start|stop
 *
 * Installed 4750 root:nobody: only root and the web UI's user may run it, so only they
 * can switch profiles. It never runs a shell: every command becomes one execv() of a fixed
 * path with a fixed argv, after every argument was checked against a strict pattern.
 * `disconnect` first removes red/keepconnected, IPFire's own "the user pressed Disconnect"
 * signal (header.pl:673 reads it that way, networking/red:523 removes it for dial types),
 * so that on a DHCP or STATIC RED, where IPFire's `network stop red` keeps it, connectd
 * does not redial what the administrator just hung up.
 *
 * Build-time settings (the lab points them at its box):
 *   CONNECTD_BIN   default "/usr/sbin/connectd"
 *   CONNECTD_ROOT  default "/"        (passed as --root)
 *   REDCTRL        default "/usr/local/bin/redctrl"
 *   SAFE_PATH      default "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
 *
 * Exit codes: those of the program it runs; 2 for a refused command or argument.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CONNECTD_BIN
#define CONNECTD_BIN "/usr/sbin/connectd"
#endif
#ifndef CONNECTD_ROOT
#define CONNECTD_ROOT "/"
#endif
#ifndef REDCTRL
#define REDCTRL "/usr/local/bin/redctrl"
#endif
#ifndef SAFE_PATH
#define SAFE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#endif

/* At most this many KEY=VALUE pairs in one policy-set (the form has fewer fields). */
#define MAX_PAIRS 32
#define MAX_VALUE 256

/* The policy keys the web UI may set (README, Configuration); anything else is refused
 * here, before connectd's own parser sees it. */
static const char *const policy_keys[] = {
	"FAILOVER_ENABLED",
	"BACKUPPROFILE",
	"FAILOVER_CONNECT_TIMEOUT",
	"FAILOVER_CHECK_HOST",
	"FAILOVER_CHECK_INTERVAL",
	"FAILOVER_CHECK_TIMEOUT",
	"FAILOVER_RELIABILITY",
	"FAILOVER_FAILURES",
	"FAILOVER_CHECK_DNS",
	"FAILOVER_CHECK_DNS_NAME",
	"FAILOVER_MAX_LOSS",
	"FAILOVER_MAX_RTT",
	"FAILOVER_WINDOW",
	"FAILBACK_ENABLED",
	"FAILBACK_DELAY",
	"FAILBACK_ATTEMPTS",
	"FAILBACK_GRACE",
	"FAILBACK_DELAY_MAX",
	"HOOK_TIMEOUT",
	NULL,
};

static void usage(void) {
	fprintf(stderr,
		"usage: connectdctrl status | history | policy | policy-set KEY=VALUE...\n"
		"       | failover PROFILE | failback | auto on|off | connect | disconnect\n");
	exit(2);
}

static void refuse(const char *what, const char *arg) {
	fprintf(stderr, "connectdctrl: %s: refused\n", what);
	(void)arg; /* not echoed: it may be anything */
	exit(2);
}

/* A profile name as DESIGN.md 2 allows it: [A-Za-z0-9_-]{1,32}. */
int valid_profile(const char *s) {
	size_t n = strlen(s);
	if (n < 1 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* KEY=VALUE with KEY from policy_keys and VALUE of IPFire's readhash charset without
 * '=' (src/scripts/readhash: A-Za-z0-9=/,.:%_@#+-), at most MAX_VALUE bytes. */
int valid_pair(const char *s) {
	const char *eq = strchr(s, '=');
	if (eq == NULL)
		return 0;
	size_t klen = (size_t)(eq - s);
	int known = 0;
	for (int i = 0; policy_keys[i] != NULL; i++) {
		if (strlen(policy_keys[i]) == klen && strncmp(policy_keys[i], s, klen) == 0) {
			known = 1;
			break;
		}
	}
	if (!known)
		return 0;
	const char *v = eq + 1;
	if (strlen(v) > MAX_VALUE)
		return 0;
	for (; *v; v++) {
		char c = *v;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      strchr("/,.:%_@#+-", c) != NULL))
			return 0;
	}
	return 1;
}

/* Everything a setuid program must do before it trusts nothing it inherited (the steps
 * of IPFire's initsetuid, setuid.c:163, in our own words): default signal
 * dispositions, only fds 0-2 (open, else /dev/null), no core dumps, no supplementary groups,
 * real and effective ids root, an empty environment but for a fixed PATH. */
static void clean_process(void) {
	for (int i = 1; i < NSIG; i++) {
		if (i != SIGKILL && i != SIGSTOP && i != SIGCHLD)
			signal(i, SIG_DFL);
	}
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = 3; fd < max; fd++)
		close(fd);
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) == -1) {
			if (errno != EBADF)
				exit(1);
			if (open("/dev/null", O_RDWR) != fd)
				exit(1);
		}
	}
	struct rlimit none = {0, 0};
	if (setrlimit(RLIMIT_CORE, &none) != 0) {
		perror("connectdctrl: setrlimit");
		exit(1);
	}
	if (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) {
		perror("connectdctrl: cannot become root (installed 4750 root:nobody?)");
		exit(1);
	}
	if (clearenv() != 0 || setenv("PATH", SAFE_PATH, 1) != 0 ||
	    setenv("LANG", "C", 1) != 0) {
		fprintf(stderr, "connectdctrl: cannot clean the environment\n");
		exit(1);
	}
	umask(022);
	if (chdir("/") != 0)
		exit(1);
}

static void run(char *const argv[]) {
	execv(argv[0], argv);
	fprintf(stderr, "connectdctrl: cannot run %s: %s\n", argv[0], strerror(errno));
	exit(1);
}

#ifndef CONNECTDCTRL_NO_MAIN
int main(int argc, char *argv[]) {
	if (argc < 2)
		usage();
	const char *cmd = argv[1];

	/* Decide everything before any privilege is used. */
	char *args[4 + MAX_PAIRS + 4];
	int n = 0;
	args[n++] = CONNECTD_BIN;
	args[n++] = "--root";
	args[n++] = CONNECTD_ROOT;
	int red = 0; /* 1 connect, 2 disconnect */

	if (strcmp(cmd, "status") == 0 && argc == 2) {
		args[n++] = "status";
		args[n++] = "--json";
	} else if (strcmp(cmd, "history") == 0 && argc == 2) {
		args[n++] = "history";
		args[n++] = "--json";
	} else if (strcmp(cmd, "policy") == 0 && argc == 2) {
		args[n++] = "policy";
		args[n++] = "--json";
	} else if (strcmp(cmd, "policy-set") == 0 && argc >= 3) {
		if (argc - 2 > MAX_PAIRS)
			refuse("policy-set: too many values", NULL);
		args[n++] = "policy";
		args[n++] = "set";
		for (int i = 2; i < argc; i++) {
			if (!valid_pair(argv[i]))
				refuse("policy-set: a KEY=VALUE", argv[i]);
			args[n++] = argv[i];
		}
	} else if (strcmp(cmd, "failover") == 0 && argc == 3) {
		if (!valid_profile(argv[2]))
			refuse("failover: the profile name", argv[2]);
		args[n++] = "failover";
		args[n++] = argv[2];
	} else if (strcmp(cmd, "failback") == 0 && argc == 2) {
		args[n++] = "failback";
		args[n++] = "--force";
	} else if (strcmp(cmd, "auto") == 0 && argc == 3 &&
		   (strcmp(argv[2], "on") == 0 || strcmp(argv[2], "off") == 0)) {
		args[n++] = "auto";
		args[n++] = strcmp(argv[2], "on") == 0 ? "on" : "off";
	} else if (strcmp(cmd, "connect") == 0 && argc == 2) {
		red = 1;
	} else if (strcmp(cmd, "disconnect") == 0 && argc == 2) {
		red = 2;
	} else {
		usage();
	}
	args[n] = NULL;

	clean_process();

	if (red) {
		if (red == 2) {
			char kc[4096];
			int len = snprintf(kc, sizeof kc, "%s/var/ipfire/red/keepconnected",
					   strcmp(CONNECTD_ROOT, "/") == 0 ? "" : CONNECTD_ROOT);
			if (len < 0 || (size_t)len >= sizeof kc)
				exit(1);
			if (unlink(kc) != 0 && errno != ENOENT) {
				fprintf(stderr, "connectdctrl: cannot remove %s: %s\n", kc,
					strerror(errno));
				exit(1);
			}
		}
		char *red_argv[] = {REDCTRL, red == 1 ? "start" : "stop", NULL};
		run(red_argv);
	}
	run(args);
	return 1;
}
#endif
