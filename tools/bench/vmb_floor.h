/* vmb_floor.h: the benchmark's floor: a minimal connect-lock-reply daemon and its client, to measure what any lock daemon of this shape costs on a machine. */
#ifndef VMB_FLOOR_H
#define VMB_FLOOR_H

#include <limits.h>
#include <sys/types.h>
#include <sys/un.h>

#include "vml_error.h"

/*
 * The floor daemon is a forked child with one thread and one poll loop, like vmlockd: it
 * accepts a connection (accept4, SO_PEERCRED as every lock daemon checks its peer), reads one
 * length-framed request, takes (or drops) an OFD lock on byte 0 of the file the request
 * names (open + F_OFD_SETLK, as vmlockd does in direct mode), and replies.  Nothing else: no
 * XDR, no owners, no tables.  A lock cycle is what a plugin's 1-disk cycle is on the wire:
 * connect, lock, reply, close; connect, unlock, reply, close.
 */
typedef struct vmb_floor {
    pid_t pid;                      /* the daemon; 0 when not running */
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char lock_path[PATH_MAX];       /* the file it locks */
} vmb_floor;

/*
 * Create the socket and the lock file in dir (existing), start the daemon.  The socket is
 * listening before the fork, so the daemon is usable as soon as this returns.
 */
int vmb_floor_start(const char *dir, vmb_floor *floor, vml_error *err);

/* One cycle: *lock_us and *unlock_us are the client-side times of its two connections. */
int vmb_floor_cycle(const vmb_floor *floor, double *lock_us, double *unlock_us, vml_error *err);

/* Kill and reap the daemon, remove its socket.  Accepts a floor that never started. */
void vmb_floor_stop(vmb_floor *floor);

#endif
