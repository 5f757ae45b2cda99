/* dmn_server.h: the listening sockets, the clients and the daemon's one poll loop. */
#ifndef DMN_SERVER_H
#define DMN_SERVER_H

#include <stdbool.h>

#include "vml_error.h"

typedef struct dmn_server dmn_server;

typedef struct dmn_server_options {
    const char *main_path;          /* socket path to bind when main_fd < 0 */
    const char *admin_path;         /* socket path to bind when admin_fd < 0 */
    int main_fd;                    /* a socket-activated listening fd (taken over), or -1 */
    int admin_fd;
    bool privileged;                /* serve uid 0 only; else only our own euid */
    unsigned int max_clients;       /* per socket */
    unsigned int admin_max_clients;
    unsigned int owner_kill_grace_ms;
    unsigned int timeout_secs;      /* exit after this long with no client and no lease; 0 = never */
} dmn_server_options;

/*
 * Set up everything the loop needs and start listening: when this returns 0 the sockets
 * accept connections.  A socket path another live daemon answers on is refused ("already in
 * use"); a stale socket file is replaced.  Activation fds in opts are owned by the server
 * from this call on, whether it succeeds or not.  *out is owned by the caller.
 */
int dmn_server_new(const dmn_server_options *opts, dmn_server **out, vml_error *err);

/* Run the poll loop until a quit signal or the idle timeout.  Returns 0, or -1 with err on
 * a failure of the loop itself (poll failing). */
int dmn_server_run(dmn_server *server, vml_error *err);

/*
 * Orderly shutdown: close every client (owners are not killed), release every lease as an
 * explicit release would (autocreated lease files are removed), close and unlink the socket
 * paths this server created (only while they still are the sockets it bound).  Accepts NULL.
 */
void dmn_server_free(dmn_server *server);

/*
 * For signal handlers, async-signal-safe: SIGTERM/SIGINT/SIGQUIT request the orderly quit,
 * SIGUSR1 is noted (re-exec is not implemented: the loop logs a warning and carries on).
 * The flags and the self-pipe are process-wide: there is one loop per process.
 */
void dmn_server_on_signal(int signo);

#endif
