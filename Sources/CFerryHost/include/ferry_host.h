// Host-side helpers that the plugin ABI header must not carry.
#ifndef FERRY_HOST_H
#define FERRY_HOST_H
#include <stdint.h>

// The cancel flag plugins read with ferry_is_cancelled(); written atomically.
static inline void ferry_host_store_flag(int32_t *flag, int32_t value) {
    __atomic_store_n(flag, value, __ATOMIC_RELAXED);
}
static inline int32_t ferry_host_load_flag(const int32_t *flag) {
    return __atomic_load_n(flag, __ATOMIC_RELAXED);
}

// Points fd 2 at an in-memory file while a plugin file is loaded, so what a
// library constructor prints reaches the host's log as a warning naming the
// plugin instead of as a raw line in it. Returns the capture fd (or -1: no
// capture, load anyway) and the saved fd 2 in *saved.
int ferry_host_stderr_capture_begin(int *saved);
// Restores fd 2; copies at most `capacity` captured bytes to `out`, returns how many.
long ferry_host_stderr_capture_end(int fd, int saved, char *out, long capacity);

// Which plugin call this thread is in, for the crash line (call: the index of
// open, read, release, transform, write, preview, commit, close, check,
// estimate). `plugin` and `fields` (the plugin as JSON object members, for the
// crash line of a run in a child process) must stay valid until the matching end.
void ferry_host_call_begin(const char *plugin, const char *fields, int call);
void ferry_host_call_end(void);
// Installs the fatal-signal handlers that print "ferry: plugin 'x' (path)
// crashed with SIGSEGV during read()" and then defer to the previous handlers.
void ferry_host_install_crash_report(void);
// A run in a child process: a crash also writes one JSON line to `fd`.
void ferry_host_set_crash_fd(int fd);
// PR_SET_PDEATHSIG(sig); -1 when it failed or the parent is no longer `expected_parent`.
int ferry_host_die_with_parent(int sig, int expected_parent);
// PR_SET_NAME.
int ferry_host_set_process_name(const char *name);
// posix_spawn_file_actions_addclosefrom_np on a posix_spawn_file_actions_t.
int ferry_host_spawn_close_from(void *actions, int lowest);
// pipe2(fds, O_CLOEXEC).
int ferry_host_pipe_cloexec(int fds[2]);
#endif
