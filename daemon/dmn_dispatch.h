/* dmn_dispatch.h: the procedure table (one row per program/procedure with its policy) and message dispatch. */
#ifndef DMN_DISPATCH_H
#define DMN_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <rpc/rpc.h>

#include "vml_error.h"
#include "vml_lockspace.h"
#include "vml_rpc.h"
#include "dmn_check.h"
#include "dmn_lockspace.h"
#include "dmn_owner.h"

typedef enum {
    DMN_SOCKET_MAIN,
    DMN_SOCKET_ADMIN,
} dmn_socket_kind;

/* What the dispatcher knows about one connection. */
typedef struct dmn_session {
    dmn_socket_kind socket;
    pid_t peer_pid;                 /* SO_PEERCRED */
    uid_t peer_uid;
    bool registered;                /* REGISTER succeeded: owner is valid */
    vml_ls_owner owner;             /* owner.name owned by the session */
    bool restricted;                /* RESTRICT succeeded: every later call is refused */
    bool deferred;                  /* a CHECK_NOW waits for its round: no reply yet */
    vml_rpc_header deferred_hdr;    /* the call to answer when it is done */
    uint64_t deferred_round;        /* the check round whose end answers it */
} dmn_session;

/* A fresh session of a connection on socket from the given peer. */
void dmn_session_init(dmn_session *session, dmn_socket_kind socket, pid_t peer_pid,
                      uid_t peer_uid);

/* Free what the session owns; accepts an initialised session, any number of times. */
void dmn_session_clear(dmn_session *session);

/* True when this connection is its registered owner's holder connection (peer pid ==
 * registered pid): its closing means the owner has lost its lock manager connection. */
bool dmn_session_is_holder(const dmn_session *session);

/* The daemon state handlers work on; all pointers borrowed. */
typedef struct dmn_context {
    dmn_lockspaces *lockspaces;
    dmn_owners *owners;
    dmn_checker *checker;           /* NULL: no checks (CHECK_NOW answers at once) */
    unsigned int nclients;          /* connected clients, kept by the server (STATUS) */
    int64_t start_usec;             /* CLOCK_MONOTONIC at the first start (STATUS uptime) */
    unsigned int keeper_pid;        /* 0: no keeper (STATUS) */
    unsigned int reexecs;           /* SIGUSR1 re-execs since the first start */
    unsigned int adopted;           /* leases adopted from the keeper at start */
    bool stop_requested;            /* SHUTDOWN accepted: stop once its reply is sent */
} dmn_context;

/*
 * lease's lock is lost (reason for the log): mark it, count it, and apply the
 * <on_lockfailure> action of every holder (ARCHITECTURE daemon invariant 13).  A lease already
 * marked lost is left alone.
 */
void dmn_context_lease_lost(dmn_context *ctx, dmn_lease *lease, const char *reason);

/* "refusing to stop: ..." when leases are held (for SIGTERM and SHUTDOWN); false when none. */
bool dmn_context_refuse_stop(const dmn_context *ctx, char *why, size_t why_len);

/* Policy flags of a table row, checked in one place (check_policy) before the handler. */
#define DMN_NEEDS_OWNER               (1u << 0)   /* REGISTER must have succeeded */
#define DMN_ALLOWED_WHEN_RESTRICTED   (1u << 1)   /* served after RESTRICT */
#define DMN_MAIN_SOCKET               (1u << 2)   /* served on the main socket */
#define DMN_ADMIN_SOCKET              (1u << 3)   /* served on the admin socket */

/* flags_offset of a procedure whose arguments have no flags word. */
#define DMN_NO_FLAGS_FIELD ((size_t)-1)

/*
 * A handler runs after the policy check with decoded args; it fills ret (zeroed, ret_size
 * bytes; freed by the dispatcher with xdr_free(ret_proc), so everything in it must be
 * malloc'd) and returns 0, or -1 with err set (sent as the error reply).
 */
typedef int (*dmn_handler)(dmn_context *ctx, dmn_session *session, void *args, void *ret,
                           vml_error *err);

typedef struct dmn_proc {
    unsigned int prog;
    unsigned int vers;
    int proc;
    const char *name;               /* in messages: "unsupported flags ... in function NAME" */
    xdrproc_t args_proc;
    size_t args_size;
    xdrproc_t ret_proc;             /* NULL: the reply has an empty payload */
    size_t ret_size;
    size_t flags_offset;            /* offsetof(args, flags) or DMN_NO_FLAGS_FIELD */
    unsigned int allowed_flags;
    dmn_handler handler;
    unsigned int policy;            /* DMN_* policy flags */
} dmn_proc;

/* The whole table; *n set to its number of rows.  Static storage. */
const dmn_proc *dmn_dispatch_table(size_t *n);

/*
 * Handle one complete message msg[0..len) (length word included) received on session's
 * connection.  Returns 0 with *reply (malloc'd, owned by the caller) to send, or -1 when
 * the client must be dropped (undecodable message), with why[] saying why.  A CHECK_NOW
 * returns 0 with *reply NULL and session->deferred set: the reply comes from
 * dmn_dispatch_finish_deferred once check round session->deferred_round is done.
 */
int dmn_dispatch_message(dmn_context *ctx, dmn_session *session, const unsigned char *msg,
                         size_t len, unsigned char **reply, size_t *reply_len,
                         char *why, size_t why_len);

/* The reply to a deferred CHECK_NOW (session->deferred is cleared): 0 with *reply owned by
 * the caller, -1 when it cannot be encoded (drop the client). */
int dmn_dispatch_finish_deferred(dmn_context *ctx, dmn_session *session, unsigned char **reply,
                                 size_t *reply_len, char *why, size_t why_len);

#endif
