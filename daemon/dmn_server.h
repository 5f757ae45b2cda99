/* dmn_server.h: the listening sockets, the clients and the daemon's one poll loop. */
#ifndef DMN_SERVER_H
#define DMN_SERVER_H

#include <stdbool.h>

#include "vml_error.h"
#include "vml_handover.h"

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
    unsigned int timeout_secs;      /* exit after this long with no lease and no active client; 0 = never */
    unsigned int lease_check_interval_ms;   /* 0: no periodic checks (CHECK_NOW still works) */
    unsigned int lease_check_timeout_ms;    /* unverified this long after a round began = lost */
    unsigned int keeper_timeout_ms;         /* 0: the keeper module's default */
    const char *pause_helper;       /* vmlockd-pause-helper for on_lockfailure=pause; NULL none */
    const char *keeper_path;        /* the keeper's socket; NULL: no keeper (locks die with us) */
    const char *log_outputs;        /* the effective log_outputs (handed to a keeper we start) */
    const char *exe_path;           /* the binary SIGUSR1 re-executes; NULL: no re-exec */
    char *const *argv;              /* the command line to re-execute with */
    const char *pid_file;           /* the locked pid file (handed over on re-exec) */
    int pid_file_fd;
} dmn_server_options;

/*
 * Set up everything the loop needs and start listening: when this returns 0 the sockets
 * accept connections.  A socket path another live daemon answers on is refused ("already in
 * use"); a stale socket file is replaced.  Activation fds in opts are owned by the server
 * from this call on, whether it succeeds or not.  *out is owned by the caller.
 */
int dmn_server_new(const dmn_server_options *opts, dmn_server **out, vml_error *err);

/*
 * The server of a re-executed image, from the previous image's handover (decoded and
 * checked by dmn_handover_read; every descriptor in it is taken over, even on error):
 * listening sockets, clients with their sessions and half-read or half-sent messages,
 * owners with their pidfds and pending kills, leases (each descriptor verified to still
 * hold its lock), the daemon-local generations, the keeper connection.  Any failure is an
 * error: the caller reports it loudly and exits non-zero, and nothing is released (the
 * keeper still holds every lock; a plain restart adopts them).
 */
int dmn_server_restore(const dmn_server_options *opts, const vml_handover *ho,
                       dmn_server **out, vml_error *err);

/* Run the poll loop until a stop (a quit signal with no lease held, SHUTDOWN) or the idle
 * timeout.  SIGUSR1 re-executes opts->exe_path in place from inside the loop (this call
 * then never returns; when the exec fails the loop carries on).  Returns 0, or -1 with err
 * on a failure of the loop itself (poll failing). */
int dmn_server_run(dmn_server *server, vml_error *err);

/*
 * Orderly shutdown: close every client (owners are not killed), release every lease as an
 * explicit release would (owner records cleared), tell the keeper to exit, close and unlink
 * the socket paths this server created (only while they still are the sockets it bound).
 * A server that never finished starting abandons instead (dmn_server_abandon).  Accepts NULL.
 */
void dmn_server_free(dmn_server *server);

/*
 * Crash-like exit: free everything WITHOUT releasing a lease or telling the keeper to go
 * (it keeps every lock for the next daemon); sockets are closed and unlinked.  Accepts NULL.
 */
void dmn_server_abandon(dmn_server *server);

/*
 * For signal handlers, async-signal-safe: SIGTERM/SIGINT/SIGQUIT request the orderly quit,
 * which the loop refuses (logging why) while leases are held; SIGUSR1 requests the re-exec.
 * The flags and the self-pipe are process-wide: there is one loop per process.
 */
void dmn_server_on_signal(int signo);

#endif
