// The pre-Go half of `berth exec`: join a running container's namespaces while the process is still
// single-threaded. See nsenter.go for the protocol.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int report_fd = -1;

// fail tells the parent what went wrong ("E<step>: <errno text>") and exits before Go ever starts.
static void fail(const char *step) {
	char buf[256];
	int n = snprintf(buf, sizeof buf, "E%s: %s\n", step, strerror(errno));
	if (report_fd >= 0 && n > 0) {
		ssize_t unused = write(report_fd, buf, (size_t)n);
		(void)unused;
	}
	_exit(1);
}

// The order matters. user comes last: the host's root may join every other namespace, the container's
// root (which we become by joining its user namespace) may not join one the engine made, like its
// network namespace. mnt comes just before, because once it is joined the /proc of the host is out of reach
// (the descriptors are all opened before the first setns anyway), and pid only affects our children.
static const struct {
	const char *name;
	int type;
} namespaces[] = {
	{"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
	{"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
	{"user", CLONE_NEWUSER},
};
#define NNS (sizeof namespaces / sizeof namespaces[0])

// same_ns reports whether we already are in the namespace fd refers to: setns into one's own namespace
// is harmless for most types but refused for some, and skipping it is cheaper anyway.
static int same_ns(int fd, const char *name) {
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof path, "/proc/self/ns/%s", name);
	if (fstat(fd, &a) < 0 || stat(path, &b) < 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void berth_nsenter(void) {
	const char *pidenv = getenv("_BERTH_NSENTER_PID");
	if (pidenv == NULL)
		return; // every other start of the binary: nothing to do, Go starts as usual
	const char *pipeenv = getenv("_BERTH_NSENTER_PIPE");
	report_fd = pipeenv ? atoi(pipeenv) : -1;
	int pid = atoi(pidenv);
	if (pid <= 0) {
		errno = EINVAL;
		fail("bad target pid");
	}

	// Not dumpable from here on: a container process that may ptrace (CAP_SYS_PTRACE in its namespace)
	// must not take over this helper while it still holds the host's credentials (runc's CVE-2016-9962).
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail("prctl dumpable");

	char path[64];
	int fds[NNS];
	for (size_t i = 0; i < NNS; i++) {
		snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, namespaces[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			if (errno == ENOENT && namespaces[i].type == CLONE_NEWCGROUP)
				continue; // a kernel without cgroup namespaces
			fail("open namespace");
		}
		if (same_ns(fds[i], namespaces[i].name)) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	// The container's root as its init sees it, taken before we move: after setns(mnt) the kernel puts
	// us at the namespace's root mount, which is only the container's root if it pivoted there.
	snprintf(path, sizeof path, "/proc/%d/root", pid);
	int root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		fail("open container root");

	int joined_user = 0;
	for (size_t i = 0; i < NNS; i++) {
		if (fds[i] < 0)
			continue;
		if (setns(fds[i], namespaces[i].type) < 0)
			fail(namespaces[i].name);
		close(fds[i]);
		if (namespaces[i].type == CLONE_NEWUSER)
			joined_user = 1;
	}
	// setns keeps our ids: we would still be the host's root (uid 0 outside the container's mapping)
	// until the Go half switches to the container's user. Become the namespace's root at once, as runc
	// does, so nothing runs in the container as the host's root.
	if (joined_user && (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		fail("become the user namespace's root");
	if (fchdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0)
		fail("enter container root");
	close(root);
	unsetenv("_BERTH_NSENTER_PID");
	unsetenv("_BERTH_NSENTER_PIPE");

	// A pid namespace joined with setns applies to children only: fork, and let the child (in the
	// container's pid namespace) become the Go program. The parent reports the child's pid and exits;
	// the child is then reparented to the caller, which must be a child subreaper.
	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child > 0) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, "P%d\n", (int)child);
		ssize_t unused = write(report_fd, buf, (size_t)n);
		(void)unused;
		_exit(0);
	}
	if (report_fd >= 0)
		close(report_fd);
}
