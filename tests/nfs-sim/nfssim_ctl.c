/* nfssim_ctl.c: vml-nfssim-ctl, scenario control of the simulated NFS server over its control socket. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nfssim_proto.h"

/*
 * The control protocol is one text line (the arguments joined by spaces) answered by text
 * lines, the last of which is "OK" or "ERR message"; the server then closes the connection.
 */

#define CTL_IO_TIMEOUT_MS 3600000     /* the server bounds every wait itself; this only guards a hang */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: vml-nfssim-ctl CONTROL_SOCKET COMMAND [ARGS...]\n"
            "commands:\n"
            "  reboot [--grace SECS] [--enolck]   server reboot: drop all locks, then a grace period\n"
            "  end-grace                          end the grace period now\n"
            "  expire HOST                        expire HOST's NFSv4 lease now\n"
            "  partition HOST [--oneway|--replies] [--timeo MS]\n"
            "                                     cut HOST off (both ways; --oneway: only its requests;\n"
            "                                     --replies: only what the server sends it)\n"
            "  heal HOST                          end HOST's partition\n"
            "  latency HOST MS                    delay HOST's requests\n"
            "  enolck N                           the next N lock requests fail with ENOLCK\n"
            "  lose-locks HOST [--no-eio]         silently drop HOST's locks\n"
            "  host-reboot HOST                   HOST rebooted (SM_NOTIFY): drop its locks\n"
            "  reclaim HOST on|off                whether HOST reclaims after a server reboot\n"
            "  mode nfs3|nfs4 [--lease SECS]      lock semantics\n"
            "  dump                               print hosts, locks and waiters\n"
            "  seq                                print the last event number\n"
            "  events [--since SEQ]               print the event log\n"
            "  wait-event EVENT [HOST] [--since SEQ] [--timeout SECS]\n"
            "                                     wait for an event (default: any since start, 30 s)\n");
}

static bool arg_ok(const char *arg)
{
    if (arg[0] == '\0')
        return false;
    for (const char *p = arg; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char *line = NULL;
    size_t line_len = 0;
    char *reply = NULL;
    size_t reply_len = 0;
    size_t reply_cap = 0;
    char *last;
    int fd = -1;
    int ret = 1;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "vml-nfssim-ctl: control socket path '%s' is too long\n", argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!arg_ok(argv[i])) {
            fprintf(stderr, "vml-nfssim-ctl: argument %d ('%s') is empty or contains white space\n", i, argv[i]);
            return 2;
        }
        line_len += strlen(argv[i]) + 1;
    }
    if (line_len > 4000) {
        fprintf(stderr, "vml-nfssim-ctl: the command is longer than 4000 bytes\n");
        return 2;
    }
    line = malloc(line_len + 1);
    if (line == NULL) {
        fprintf(stderr, "vml-nfssim-ctl: out of memory\n");
        return 1;
    }
    line[0] = '\0';
    for (int i = 2; i < argc; i++) {
        strcat(line, argv[i]);
        strcat(line, i + 1 < argc ? " " : "\n");
    }

    memcpy(addr.sun_path, argv[1], strlen(argv[1]) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "vml-nfssim-ctl: cannot connect to '%s': %s\n", argv[1], strerror(errno));
        goto out;
    }
    if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
        fprintf(stderr, "vml-nfssim-ctl: cannot send the command: %s\n", strerror(errno));
        goto out;
    }
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (reply_cap - reply_len < 4096) {
            char *grown = realloc(reply, reply_cap + 65536);

            if (grown == NULL) {
                fprintf(stderr, "vml-nfssim-ctl: out of memory\n");
                goto out;
            }
            reply = grown;
            reply_cap += 65536;
        }
        if (poll(&pfd, 1, CTL_IO_TIMEOUT_MS) == 0) {
            fprintf(stderr, "vml-nfssim-ctl: the server did not answer\n");
            goto out;
        }
        n = read(fd, reply + reply_len, reply_cap - reply_len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "vml-nfssim-ctl: read failed: %s\n", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        reply_len += (size_t)n;
    }
    if (reply == NULL || reply_len == 0 || reply[reply_len - 1] != '\n') {
        fprintf(stderr, "vml-nfssim-ctl: the server closed the connection without a complete answer\n");
        goto out;
    }
    reply[reply_len - 1] = '\0';
    last = strrchr(reply, '\n');
    last = last != NULL ? last + 1 : reply;
    fwrite(reply, 1, (size_t)(last - reply), stdout);
    if (strcmp(last, "OK") == 0) {
        ret = 0;
    } else if (strncmp(last, "ERR ", 4) == 0) {
        fprintf(stderr, "vml-nfssim-ctl: %s: %s\n", argv[2], last + 4);
    } else {
        fprintf(stderr, "vml-nfssim-ctl: unexpected answer '%s'\n", last);
    }

out:
    if (fd >= 0)
        close(fd);
    free(reply);
    free(line);
    return ret;
}
