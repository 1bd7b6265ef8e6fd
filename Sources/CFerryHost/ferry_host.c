// memfd_create needs _GNU_SOURCE before any system header.
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>

#include "ferry_host.h"

int ferry_host_stderr_capture_begin(int *saved) {
    fflush(stderr);
    // In memory: no writable directory needed (read-only root filesystems).
    int fd = memfd_create("ferry-plugin-load", MFD_CLOEXEC);
    if (fd < 0) return -1;
    int copy = dup(2);
    if (copy < 0 || dup2(fd, 2) < 0) {
        if (copy >= 0) close(copy);
        close(fd);
        return -1;
    }
    *saved = copy;
    return fd;
}

long ferry_host_stderr_capture_end(int fd, int saved, char *out, long capacity) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long length = 0;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size > 0 && lseek(fd, 0, SEEK_SET) == 0) {
        long want = size < capacity ? (long)size : capacity;
        while (length < want) {
            ssize_t got = read(fd, out + length, (size_t)(want - length));
            if (got <= 0) break;
            length += got;
        }
    }
    close(fd);
    return length;
}

// ---------------------------------------------------------------------------
// Naming the plugin a crash happened in. The runtime brackets every plugin
// call with ferry_host_call_begin/end; a fatal signal during a call writes one
// line naming the plugin and the call before the previous handler (Swift's
// backtracer, or the default) runs. Only async-signal-safe calls in the handler.

#include <signal.h>
#include <string.h>

static __thread const char *current_plugin;
static __thread const char *current_fields;
static __thread int current_call = -1;
// Where a run in a child process reports a crash to the daemon (-1: nowhere).
static int crash_fd = -1;

static const char *const call_names[] = {
    "open()", "read()", "release()", "transform()", "write()", "preview()", "commit()", "close()", "check()", "estimate()",
    "diff_info()", "digest()", "select_buckets()", "delete_keys()",
};

void ferry_host_call_begin(const char *plugin, const char *fields, int call) {
    current_plugin = plugin;
    current_fields = fields;
    current_call = call;
}

void ferry_host_call_end(void) {
    current_plugin = NULL;
    current_fields = NULL;
    current_call = -1;
}

void ferry_host_set_crash_fd(int fd) { crash_fd = fd; }

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static struct sigaction previous_actions[sizeof crash_signals / sizeof crash_signals[0]];

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "a signal";
    }
}

static void write_to(int fd, const char *text) {
    size_t length = strlen(text);
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n <= 0) return;
        text += n;
        length -= (size_t)n;
    }
}

static void write_all(const char *text) { write_to(2, text); }

// The crash as one protocol line for the daemon (docs/run-protocol.md). It
// starts with a newline: another thread may have been halfway through a line.
static void report_crash(int sig, const char *fields, int call) {
    char number[12];
    int length = 0;
    char digits[12];
    int value = sig;
    do {
        digits[length++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && length < 11);
    for (int i = 0; i < length; i++) number[i] = digits[length - 1 - i];
    number[length] = 0;
    write_to(crash_fd, "\n{\"v\":1,\"type\":\"crash\",\"signal\":");
    write_to(crash_fd, number);
    write_to(crash_fd, ",\"signalName\":\"");
    write_to(crash_fd, signal_name(sig));
    write_to(crash_fd, "\"");
    if (fields) {
        write_to(crash_fd, ",");
        write_to(crash_fd, fields);
    }
    if (call >= 0 && call < (int)(sizeof call_names / sizeof call_names[0])) {
        write_to(crash_fd, ",\"call\":\"");
        write_to(crash_fd, call_names[call]);
        write_to(crash_fd, "\"");
    }
    write_to(crash_fd, "}\n");
}

static void crash_handler(int sig, siginfo_t *info, void *context) {
    (void)context;
    const char *plugin = current_plugin;
    int call = current_call;
    if (crash_fd >= 0) report_crash(sig, current_fields, call);
    if (plugin) {
        write_all("\nferry: ");
        write_all(plugin);
        write_all(" crashed with ");
        write_all(signal_name(sig));
        if (call >= 0 && call < (int)(sizeof call_names / sizeof call_names[0])) {
            write_all(" during ");
            write_all(call_names[call]);
        }
        write_all("\n");
    }
    for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++) {
        if (crash_signals[i] == sig) sigaction(sig, &previous_actions[i], NULL);
    }
    // A fault re-executes the faulting instruction on return and meets the
    // previous handler; a sent signal (abort, kill) has to be sent again.
    if (info == NULL || info->si_code <= 0) raise(sig);
}

void ferry_host_install_crash_report(void) {
    static int installed;
    if (installed) return;
    installed = 1;
    for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = crash_handler;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        sigaction(crash_signals[i], &action, &previous_actions[i]);
    }
}

// ---------------------------------------------------------------------------
// A run in a child process dies with its daemon: the kernel sends `sig` when
// the parent goes. If the parent already went before this call (the child is
// then someone else's), return -1 so the child stops at once.

#include <sys/prctl.h>

int ferry_host_die_with_parent(int sig, int expected_parent) {
    if (prctl(PR_SET_PDEATHSIG, sig) != 0) return -1;
    return getppid() == expected_parent ? 0 : -1;
}

// Both ends close-on-exec from the start: a pipe made for one run's child must
// not leak into another child spawned at the same moment (its reader would
// then wait for that other child to exit before it saw end of file).
int ferry_host_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

// The name `ps -o comm` and /proc/PID/comm show (15 bytes at most): a
// pre-started run process renames itself once it has its run.
int ferry_host_set_process_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }

// Closes every fd from `lowest` up in the spawned process: a run must not
// inherit the daemon's client sockets, which would stay open as long as it.
#include <spawn.h>

int ferry_host_spawn_close_from(void *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowest);
}
