/* nfssim_server.h: state of the simulated NFS server (hosts, handles, lock waiters, faults, events) shared by its modules. */
#ifndef NFSSIM_SERVER_H
#define NFSSIM_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nfssim_fs.h"
#include "nfssim_locks.h"
#include "nfssim_proto.h"

/*
 * The server is one process with one poll loop (nfssim_server.c) and no threads: every
 * structure below is touched only from that loop.  It is a singleton per process, but its
 * state lives in one sim_server passed around, not in globals.
 *
 * Time is CLOCK_MONOTONIC milliseconds (nfssim_now_ms).
 */

#define SIM_EVENTS_MAX 8192

/* An encoded message waiting to go to a connection (packets for hosts, text for control). */
typedef struct sim_msg {
    struct sim_msg *next;
    uint64_t id;                /* host replies: the request id (0 for notices) */
    int64_t deadline;           /* held replies: when the host's client gives up; 0 = never */
    size_t len;
    unsigned char data[];
} sim_msg;

typedef struct sim_msg_queue {
    sim_msg *head;
    sim_msg **tail;
} sim_msg_queue;

/* A request from a host, queued (latency, partition) or waiting (lock conflict, grace). */
typedef struct sim_request {
    struct sim_request *next;
    struct sim_host *host;
    nfssim_req *req;            /* owned: header + data */
    int64_t arrival;
    int64_t due;                /* latency: not processed before this */
    nfssim_node *node;          /* lock waiters: the node (kept alive while waiting) */
} sim_request;

/* Locks a host held when the server rebooted, per node, until it reclaims them. */
typedef struct sim_snap {
    struct sim_snap *next;
    uint64_t ino;
    nfssim_lock_list locks;
} sim_snap;

/* An open file handle: one FUSE open on one host (the kernel's file description). */
typedef struct sim_fh {
    uint64_t id;
    struct sim_host *host;
    nfssim_node *node;
    uint32_t flags;
    bool lost;                  /* a lock taken through this host on this node was lost: I/O gets EIO */
    struct sim_fh *node_next;   /* the node's list of handles */
} sim_fh;

struct sim_conn;

typedef struct sim_host {
    struct sim_host *next;
    uint32_t id;
    char name[NFSSIM_MAX_HOSTNAME + 1];
    struct sim_conn *conn;      /* NULL while no mount of this host is connected */
    bool cut_to_server;         /* partition: the host's requests are held (not executed) */
    bool cut_to_host;           /* partition: messages to the host are held (not delivered) */
    int64_t cut_since;
    uint32_t timeo_ms;          /* soft-mount timeout for held traffic; 0 = hard (wait for heal) */
    uint32_t latency_ms;
    bool reclaim_enabled;       /* told in NOTICE_REBOOT: reclaim, or give the locks up */
    int64_t last_renew;
    bool expired;               /* NFSv4 lease lapsed; the next RENEW is answered ESTALE */
    sim_request *in_head;       /* requests not yet executed, in arrival order */
    sim_request **in_tail;
    int64_t last_due;
    sim_msg_queue held;         /* messages for the host held by a partition */
    sim_snap *snap;             /* locks to reclaim after a server reboot */
    bool snap_pending;          /* a reboot happened and the host has not reclaimed yet */
} sim_host;

typedef enum { SIM_CONN_HOST, SIM_CONN_CTL } sim_conn_kind;

typedef struct sim_conn {
    struct sim_conn *next;
    int fd;
    sim_conn_kind kind;
    sim_host *host;             /* host connections, after HELLO */
    sim_msg_queue out;
    size_t out_off;             /* control: bytes of out.head already written */
    char in[4096];              /* control: the command line being read */
    size_t in_len;
    bool close_after_flush;
    bool dead;                  /* to be freed at the end of this loop round */
    bool waiting;               /* control: in wait-event */
    char wait_event[32];
    char wait_host[NFSSIM_MAX_HOSTNAME + 1];
    uint64_t wait_since;
    int64_t wait_deadline;
} sim_conn;

typedef struct sim_event {
    uint64_t seq;
    int64_t ms;                 /* since server start */
    char name[24];
    char host[NFSSIM_MAX_HOSTNAME + 1];
    char detail[128];
} sim_event;

typedef struct sim_server {
    nfssim_fs *fs;
    int host_listen;
    int ctl_listen;
    sim_conn *conns;
    sim_host *hosts;
    uint32_t next_host_id;
    sim_fh **fhs;               /* owned; index = handle id; never reused */
    size_t fhs_cap;
    uint64_t next_fh;
    sim_request *waiters;       /* blocked F_SETLKW requests, FIFO */
    sim_request *grace_waiters; /* lock requests held until the grace period ends, FIFO */
    uint32_t mode;              /* NFSSIM_MODE_NFS3 or _NFS4 */
    int64_t lease_ms;
    int64_t default_grace_ms;
    bool grace_active;
    int64_t grace_end;
    bool grace_enolck;          /* in grace, new locks fail with ENOLCK instead of waiting */
    uint64_t enolck_pending;    /* the next N lock requests fail with ENOLCK */
    sim_event *events;          /* ring of SIM_EVENTS_MAX */
    uint64_t event_seq;         /* seq of the last event; events[seq % MAX] */
    int64_t start_ms;
    unsigned char *iobuf;       /* NFSSIM_MAX_PAYLOAD bytes for reads and readdir */
} sim_server;

/* --- nfssim_state.c: the NFS semantics --- */

/* Find a host by name, or create it with default settings.  NULL on ENOMEM. */
sim_host *sim_host_get(sim_server *srv, const char *name, bool create);

/* Take ownership of a received, validated request from a connected host. */
void sim_host_receive(sim_server *srv, sim_host *host, nfssim_req *req);

/* A HELLO on conn: bind it to its host or refuse it.  Returns -1 when conn must be closed. */
int sim_host_hello(sim_server *srv, sim_conn *conn, const nfssim_req *req);

/* The host's mount went away: forget its in-flight requests and handles, keep its locks. */
void sim_host_disconnected(sim_server *srv, sim_host *host);

/* Execute due requests, expire leases, end grace, time out held traffic. */
void sim_run_timers(sim_server *srv);

/* Milliseconds until sim_run_timers has something to do; -1 for nothing. */
int sim_next_timeout(const sim_server *srv);

/* Fault and scenario commands (the control socket); on failure, err names the problem. */
void sim_server_reboot(sim_server *srv, int64_t grace_ms, bool enolck);
void sim_end_grace(sim_server *srv);
void sim_expire_host(sim_server *srv, sim_host *host, const char *why);
void sim_partition(sim_server *srv, sim_host *host, bool to_server, bool to_host);
void sim_heal(sim_server *srv, sim_host *host);
/* Delay the host's requests by ms from now on; queued ones are re-timed from their arrival. */
void sim_set_latency(sim_server *srv, sim_host *host, uint32_t ms);
void sim_lose_locks(sim_server *srv, sim_host *host, bool eio);
void sim_host_reboot(sim_server *srv, sim_host *host, const char *why);
void sim_set_mode(sim_server *srv, uint32_t mode, int64_t lease_ms);

/* Write the lock table and host state as text through out(line, ctx). */
void sim_dump(sim_server *srv, void (*out)(void *ctx, const char *fmt, ...), void *ctx);

/* --- nfssim_server.c: connections and events --- */

/* Queue an encoded message on a connection (sent at once when possible).  Takes msg. */
void sim_conn_send(sim_server *srv, sim_conn *conn, sim_msg *msg);

/* Record an event (and wake control clients waiting for it). */
void sim_log_event(sim_server *srv, const char *name, const sim_host *host, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A message of header + data, or NULL on ENOMEM.  Caller owns it. */
sim_msg *sim_msg_new(const void *head, size_t head_len, const void *data, size_t data_len);

void sim_msg_queue_init(sim_msg_queue *queue);
void sim_msg_queue_push(sim_msg_queue *queue, sim_msg *msg);
sim_msg *sim_msg_queue_pop(sim_msg_queue *queue);
void sim_msg_queue_clear(sim_msg_queue *queue);

#endif
