/* vmlock-stub-qemu.c: stand-in QEMU that signals readiness, then idles keeping every inherited descriptor (the lock holder connection). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vmlock-stub-qemu --ready-fd N [--ignore-sigterm]\n"
            "  Writes one byte to descriptor N and closes it, then waits until killed,\n"
            "  keeping every other inherited descriptor open, as QEMU keeps the lock\n"
            "  manager's connection.  --ignore-sigterm makes it survive SIGTERM, so that\n"
            "  only SIGKILL ends it.\n");
}

/* A descriptor number: decimal, 0..INT_MAX, nothing else. */
static int parse_fd(const char *text, int *fd)
{
    char *end = NULL;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0 || value > INT_MAX)
        return -1;
    *fd = (int)value;
    return 0;
}

int main(int argc, char **argv)
{
    const char ready_byte = 'R';
    bool ignore_sigterm = false;
    int ready_fd = -1;
    ssize_t n;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ready-fd") == 0) {
            if (i + 1 >= argc || parse_fd(argv[i + 1], &ready_fd) < 0) {
                fprintf(stderr, "vmlock-stub-qemu: --ready-fd needs a descriptor number, got '%s'\n",
                        i + 1 < argc ? argv[i + 1] : "");
                return 2;
            }
            i++;
        } else if (strcmp(argv[i], "--ignore-sigterm") == 0) {
            ignore_sigterm = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vmlock-stub-qemu: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (ready_fd < 0) {
        fprintf(stderr, "vmlock-stub-qemu: --ready-fd is required\n");
        usage(stderr);
        return 2;
    }
    /* Ignore before announcing readiness, so a test that sends SIGTERM right after cannot race. */
    if (ignore_sigterm && signal(SIGTERM, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "vmlock-stub-qemu: cannot ignore SIGTERM: %s\n", strerror(errno));
        return 1;
    }
    do {
        n = write(ready_fd, &ready_byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        fprintf(stderr, "vmlock-stub-qemu: cannot write to descriptor %d: %s\n", ready_fd,
                n < 0 ? strerror(errno) : "short write");
        return 1;
    }
    close(ready_fd);
    for (;;)
        pause();
}
