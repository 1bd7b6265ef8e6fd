// memfd_create needs _GNU_SOURCE before any system header.
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
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
