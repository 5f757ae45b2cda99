/* lt_hammer.c: another process (or host) trying, in a tight loop, to take locks that must stay held: lease files directly, or a lease through a daemon. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vml_wire.h"

/*
 * usage: lt_hammer file PATH...
 *        lt_hammer daemon SOCKET LOCKSPACE NAME
 * file: open each PATH and try a non-blocking OFD write lock on byte 0 (what another host's
 * daemon does); daemon: BATCH_ACQUIRE of (LOCKSPACE, NAME) for this process as owner "hammer"
 * (another domain asking the daemon), released again at once if it is ever granted.
 * It loops until told otherwise on stdin, one command a line:
 *   mark   finish at least one more full round of attempts, then print "marked ROUNDS"
 *   stop   print "attempts=N granted=G errors=E" and exit (also at end of input)
 * A grant is printed at once as "GRANTED PATH-or-NAME": it is what the tests assert never
 * happens while a lease is held.  Prints "ready" after its first round.
 */

typedef struct counts {
    unsigned long rounds, attempts, granted, errors;
} counts;

static void try_file(const char *path, counts *c)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    c->attempts++;
    if (fd < 0) {
        c->errors++;
        return;
    }
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
        c->granted++;
        printf("GRANTED %s\n", path);
        fflush(stdout);
    } else if (errno != EAGAIN && errno != EACCES) {
        c->errors++;
    }
    close(fd);
}

static void try_daemon(const char *sock, const char *lockspace, const char *name, counts *c)
{
    vml_ext_resource res = { .lockspace = (char *)lockspace, .name = (char *)name,
                             .disk = (char *)"", .flags = 0 };
    vml_ext_batch_args args = { .owner = { .name = (char *)"hammer", .id = 99,
                                           .pid = (u_int)getpid() },
                                .resources = { 1, &res } };
    vml_client client = { .fd = -1 };
    vml_error err = { 0 };

    memset(args.owner.uuid, 0x99, sizeof(args.owner.uuid));
    if (lockspace[0] != '\0')
        res.flags = VML_LS_ACQUIRE_AUTOCREATE;
    c->attempts++;
    if (vml_client_connect(&client, sock, &err) < 0) {
        c->errors++;
        return;
    }
    if (vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                        VML_EXT_PROC_BATCH_ACQUIRE, (xdrproc_t)xdr_vml_ext_batch_args, &args,
                        NULL, NULL, &err) == 0) {
        c->granted++;
        printf("GRANTED %s\n", name);
        fflush(stdout);
        vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                        VML_EXT_PROC_BATCH_RELEASE, (xdrproc_t)xdr_vml_ext_batch_args, &args,
                        NULL, NULL, &err);
    } else if (err.code != VIR_ERR_RESOURCE_BUSY) {
        c->errors++;
    }
    vml_client_close(&client);
}

/* One line from stdin if there is one ready; 1 = got a line, 0 = none, -1 = end of input. */
static int poll_command(char *line, size_t size)
{
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
    static char pending[256];
    static size_t npending;
    ssize_t n;

    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    n = read(STDIN_FILENO, pending + npending, sizeof(pending) - 1 - npending);
    if (n <= 0)
        return -1;
    npending += (size_t)n;
    pending[npending] = '\0';
    {
        char *nl = strchr(pending, '\n');
        size_t len;

        if (nl == NULL)
            return npending == sizeof(pending) - 1 ? -1 : 0;
        len = (size_t)(nl - pending);
        snprintf(line, size, "%.*s", (int)len, pending);
        memmove(pending, nl + 1, npending - len - 1);
        npending -= len + 1;
    }
    return 1;
}

int main(int argc, char **argv)
{
    bool daemon_mode;
    counts c = { 0 };
    unsigned long mark_after = 0;
    bool marking = false;

    if (argc < 3 || (strcmp(argv[1], "daemon") == 0 && argc != 5) ||
        (strcmp(argv[1], "file") != 0 && strcmp(argv[1], "daemon") != 0)) {
        fprintf(stderr, "usage: lt_hammer file PATH... | lt_hammer daemon SOCKET LOCKSPACE NAME\n");
        return 2;
    }
    daemon_mode = strcmp(argv[1], "daemon") == 0;
    for (;;) {
        char line[128];
        int rc;

        if (daemon_mode) {
            try_daemon(argv[2], argv[3], argv[4], &c);
        } else {
            for (int i = 2; i < argc; i++)
                try_file(argv[i], &c);
        }
        c.rounds++;
        if (c.rounds == 1) {
            printf("ready\n");
            fflush(stdout);
        }
        if (marking && c.rounds > mark_after) {
            printf("marked %lu\n", c.rounds);
            fflush(stdout);
            marking = false;
        }
        rc = poll_command(line, sizeof(line));
        if (rc < 0 || (rc > 0 && strcmp(line, "stop") == 0))
            break;
        if (rc > 0 && strcmp(line, "mark") == 0) {
            marking = true;
            mark_after = c.rounds;      /* one more full round from now */
        }
    }
    printf("attempts=%lu granted=%lu errors=%lu\n", c.attempts, c.granted, c.errors);
    return 0;
}
