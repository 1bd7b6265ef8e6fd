/* A shared object that is no plugin: its constructor creates the file named
 * by MARKER (a -D define) as soon as the library is loaded. Proves which .so
 * files the host opens. */
#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor)) static void mark(void) {
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
}
