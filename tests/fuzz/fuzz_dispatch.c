/* fuzz_dispatch.c: fuzz target feeding whole framed messages of both programs, on main and admin sessions, to dmn_dispatch_message(). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmn_dispatch.h"
#include "vml_log.h"
#include "vml_wire.h"
#include "fuzz_sandbox.h"
#include "fuzz_target.h"

/*
 * Input: a sequence of records, each
 *     1 byte   session selector (low 2 bits): 0 main (peer pid 1), 1 main (peer pid 2),
 *              2 admin (peer pid 1), 3 main (peer pid 3)
 *     N bytes  one framed message, its first 4 bytes the length word N (as on the wire)
 * A length word the server would refuse (vml_wire_frame_length) drops that session, as the
 * server does; so does a message the dispatcher refuses (-1).  A record cut short ends the
 * input (the server would still be waiting for the rest).
 *
 * Each input runs against a fresh daemon state in the sandbox: lockspace FUZZ_SCRATCH/ls
 * registered, FUZZ_SCRATCH/disk.img an existing file for the default lockspace; owners
 * alive are pids 1 (this process), 2 and 3.  After the input everything is freed.
 *
 * Oracles beyond the sanitizers: every reply is a well-formed message answering its call
 * (length word = size, REPLY, same prog/vers/proc/serial, an error payload that decodes);
 * a RESTRICTed main-socket session gets nothing but errors; after every call the lease
 * table keeps the invariants dmn_lockspace.h states (at least one holder, no owner twice,
 * one holder when exclusive) and every lease not marked lost is locked in its mode, as
 * seen through a separate open of its file (F_OFD_GETLK); after the state is freed no
 * descriptor is left open and no lock remains on any file under the scratch directory.
 */

#define LOCKSPACE FUZZ_SCRATCH "/ls"
#define DISK FUZZ_SCRATCH "/disk.img"
#define NSESSIONS 4

/* Taken at the start of every input, not once: between inputs libFuzzer itself may open
 * descriptors (its symbolizer pipes when it prints NEW_FUNC lines), which are not ours. */
static fuzz_fd_set fds_at_start;
static bool trace;              /* $VMLFUZZ_TRACE: one line per call on stderr (seed writing) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char why[512];

    (void)argc; (void)argv;
    if (fuzz_sandbox_enter(why, sizeof(why)) < 0)
        fuzz_cannot_run(why);
    /* What the dispatcher logs would drown the fuzzer's output; VMLFUZZ_LOG keeps it. */
    if (getenv("VMLFUZZ_LOG") == NULL && vml_log_set_outputs("4:file:/dev/null", NULL) < 0)
        fuzz_cannot_run("cannot send the daemon's log to /dev/null");
    trace = getenv("VMLFUZZ_TRACE") != NULL;
    return 0;
}

/* For $VMLFUZZ_TRACE: what one call got. */
static void trace_call(int which, const unsigned char *msg, size_t len, int rc,
                       const unsigned char *reply, size_t reply_len, const char *why)
{
    vml_rpc_header call, hdr;
    vml_rpc_error payload;

    memset(&call, 0, sizeof(call));
    vml_wire_decode_header(msg, len, &call);
    fprintf(stderr, "session %d: %#x/%u/%d serial %u: ", which, call.prog, call.vers, call.proc,
            call.serial);
    if (rc < 0) {
        fprintf(stderr, "dropped: %s\n", why);
        return;
    }
    memset(&payload, 0, sizeof(payload));
    if (vml_wire_decode_header(reply, reply_len, &hdr) == 0 && hdr.status == VML_RPC_ERROR &&
        vml_wire_decode_payload(reply, reply_len, (xdrproc_t)xdr_vml_rpc_error, &payload) == 0)
        fprintf(stderr, "error %d: %s\n", payload.code,
                payload.message != NULL ? *payload.message : "");
    else
        fprintf(stderr, "ok (%zu bytes)\n", reply_len);
    xdr_free((xdrproc_t)xdr_vml_rpc_error, (char *)&payload);
}

/* The reply to the call with header call must be well-formed; abort otherwise. */
static void check_reply(const vml_rpc_header *call, const unsigned char *reply, size_t len)
{
    vml_rpc_header hdr;
    size_t total = 0;

    if (len < VML_WIRE_MIN_MESSAGE ||
        vml_wire_frame_length(reply, VML_WIRE_MAX_MESSAGE, &total) < 0 || total != len)
        fuzz_invariant_failed("a reply's length word does not match its size");
    if (vml_wire_decode_header(reply, len, &hdr) < 0)
        fuzz_invariant_failed("a reply header does not decode");
    if (hdr.type != VML_RPC_REPLY || hdr.prog != call->prog || hdr.vers != call->vers ||
        hdr.proc != call->proc || hdr.serial != call->serial)
        fuzz_invariant_failed("a reply does not echo its call's prog/vers/proc/serial");
    if (hdr.status == VML_RPC_ERROR) {
        vml_rpc_error payload;

        memset(&payload, 0, sizeof(payload));
        if (vml_wire_decode_payload(reply, len, (xdrproc_t)xdr_vml_rpc_error, &payload) < 0)
            fuzz_invariant_failed("an error reply's payload does not decode");
        if (payload.code == 0 || payload.message == NULL || (*payload.message)[0] == '\0')
            fuzz_invariant_failed("an error reply carries no code or no message");
        xdr_free((xdrproc_t)xdr_vml_rpc_error, (char *)&payload);
    } else if (hdr.status != VML_RPC_OK) {
        fuzz_invariant_failed("a reply status is neither OK nor ERROR");
    }
}

/* The lease table's documented invariants, and each lease's lock as the kernel sees it. */
static void check_leases(const dmn_lockspaces *reg)
{
    size_t n = 0;

    for (const dmn_lease *lease = reg->head; lease != NULL; lease = lease->next) {
        bool shared = (lease->flags & VML_LS_ACQUIRE_SHARED) != 0;
        struct flock fl = { .l_type = shared ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
                            .l_start = 0, .l_len = 1 };
        int fd;

        n++;
        if (lease->nholders == 0)
            fuzz_invariant_failed("a lease without holders stays in the table");
        if (!shared && lease->nholders != 1)
            fuzz_invariant_failed("an exclusive lease has more than one holder");
        for (size_t i = 0; i < lease->nholders; i++) {
            for (size_t j = i + 1; j < lease->nholders; j++) {
                if (lease->holders[i]->owner == lease->holders[j]->owner)
                    fuzz_invariant_failed("an owner holds the same lease twice");
            }
        }
        if (lease->state & VML_SNAP_LOST)
            continue;
        /* A conflicting probe through another open file description must find the lock. */
        fd = open(lease->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            fuzz_invariant_failed("a held lease's file cannot be opened");
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK) {
            close(fd);
            fuzz_invariant_failed("a lease the daemon holds is not locked in the kernel");
        }
        close(fd);
    }
    if (n != reg->nleases)
        fuzz_invariant_failed("the lease count does not match the lease list");
}

/* nftw callback: a regular file that still carries a lock of any kind is a broken invariant. */
static int check_unlocked(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    int fd;

    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
        close(fd);
        fuzz_invariant_failed("a lock outlived the daemon state that took it");
    }
    close(fd);
    return 0;
}

static void prepare_scratch(void)
{
    int fd;

    if (fuzz_sandbox_clear_scratch() < 0)
        fuzz_invariant_failed("cannot clear the scratch directory");
    if (mkdir(LOCKSPACE, 0700) < 0 && errno != EEXIST)
        fuzz_invariant_failed("cannot create the lockspace directory");
    fd = open(DISK, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        fuzz_invariant_failed("cannot create the disk image");
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const pid_t peer_pids[NSESSIONS] = { 1, FUZZ_OWNER_PID_A, 1, FUZZ_OWNER_PID_B };
    dmn_lockspaces *lockspaces = NULL;
    dmn_owners *owners = NULL;
    dmn_context ctx;
    dmn_session sessions[NSESSIONS];
    bool dropped[NSESSIONS] = { false };
    fuzz_fd_set fds_now;
    vml_error err = { 0 };
    size_t pos = 0;

    fuzz_fd_snapshot(&fds_at_start);
    fuzz_sandbox_owners_ready();
    prepare_scratch();
    if (dmn_lockspaces_new(&lockspaces, &err) < 0 || dmn_owners_new(0, &owners, &err) < 0 ||
        dmn_lockspaces_add(lockspaces, LOCKSPACE, NULL, &err) < 0)
        fuzz_invariant_failed(err.message);
    memset(&ctx, 0, sizeof(ctx));
    ctx.lockspaces = lockspaces;
    ctx.owners = owners;
    for (int i = 0; i < NSESSIONS; i++)
        dmn_session_init(&sessions[i], i == 2 ? DMN_SOCKET_ADMIN : DMN_SOCKET_MAIN,
                         peer_pids[i], 0);

    while (pos + 1 + VML_RPC_LENGTH_WORD <= size) {
        int which = data[pos] & 3;
        const unsigned char *word = data + pos + 1;
        unsigned char *msg, *reply = NULL;
        size_t total = 0, reply_len = 0;
        vml_rpc_header call, answer;
        char why[256];
        bool was_restricted;
        int rc;

        if (vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &total) < 0) {
            /* The server drops the client at its length word; the rest is another client's. */
            dropped[which] = true;
            if (trace)
                fprintf(stderr, "session %d: dropped at its length word\n", which);
            pos += 1 + VML_RPC_LENGTH_WORD;
            continue;
        }
        if (size - pos - 1 < total)
            break;
        pos += 1 + total;
        if (dropped[which])
            continue;
        /* A buffer of exactly the message's size: reading past it is an ASan report. */
        msg = malloc(total);
        if (msg == NULL)
            break;
        memcpy(msg, word, total);
        why[0] = '\0';
        was_restricted = sessions[which].restricted && which != 2;
        rc = dmn_dispatch_message(&ctx, &sessions[which], msg, total, &reply, &reply_len, why,
                                  sizeof(why));
        if (trace)
            trace_call(which, msg, total, rc, reply, reply_len, why);
        if (rc < 0) {
            if (reply != NULL)
                fuzz_invariant_failed("a dropped client was also given a reply");
            if (why[0] == '\0')
                fuzz_invariant_failed("a client was dropped without a reason");
            dropped[which] = true;
        } else if (reply == NULL) {
            if (!sessions[which].deferred)
                fuzz_invariant_failed("no reply and nothing deferred");
            /* No checker in this state: a deferred call cannot be pending. */
            fuzz_invariant_failed("a call was deferred without a lease checker");
        } else {
            if (vml_wire_decode_header(msg, total, &call) < 0)
                fuzz_invariant_failed("a call with an undecodable header was answered");
            check_reply(&call, reply, reply_len);
            if (was_restricted && vml_wire_decode_header(reply, reply_len, &answer) == 0 &&
                answer.status == VML_RPC_OK)
                fuzz_invariant_failed("a restricted connection got a call through");
        }
        check_leases(lockspaces);
        free(reply);
        free(msg);
    }

    for (int i = 0; i < NSESSIONS; i++)
        dmn_session_clear(&sessions[i]);
    dmn_lockspaces_free(lockspaces);
    dmn_owners_free(owners);
    nftw(FUZZ_SCRATCH, check_unlocked, 16, FTW_PHYS);
    fuzz_fd_snapshot(&fds_now);
    if (fuzz_fd_leaked(&fds_at_start, &fds_now) >= 0) {
        int fd = fuzz_fd_leaked(&fds_at_start, &fds_now);
        char link[64], target[256] = "?", what[400];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n >= 0)
            target[n] = '\0';
        snprintf(what, sizeof(what), "descriptor %d (%s) leaked by the input", fd, target);
        fuzz_invariant_failed(what);
    }
    return 0;
}
