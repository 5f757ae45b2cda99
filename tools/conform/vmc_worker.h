/* vmc_worker.h: a "libvirtd" process for the conformance suite: loads a plugin and makes libvirt's lock-manager calls on request. */
#ifndef VMC_WORKER_H
#define VMC_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vml_error.h"

/*
 * The driving process (the suite) never loads the plugin itself.  Every plugin call is made in
 * a worker: a forked process that opens the plugin as libvirtd does at start (drvInit), then
 * serves requests over a SOCK_SEQPACKET socketpair, one fixed-size request and one reply at a
 * time.  Guests are spawned by the worker (libvirtd forks QEMU), so they are its children.
 * "libvirtd restart" is vmc_worker_stop() followed by vmc_worker_start(): the guests survive,
 * reparented to the suite, which makes itself a child subreaper for that.
 */

#define VMC_PATH_MAX 1024           /* paths of the suite's own images and lockspaces */
#define VMC_NAME_MAX 128
#define VMC_MAX_DISKS 8
#define VMC_STATE_MAX 4096          /* longer lock states are reported as truncated */

typedef struct vmc_disk {
    char path[VMC_PATH_MAX];
    unsigned int flags;             /* VIR_LOCK_MANAGER_RESOURCE_*; any bits (validation checks) */
} vmc_disk;

/* A <lease>; has_lockspace false drops the lockspace param, as libvirt does. */
typedef struct vmc_lease {
    char key[VMC_NAME_MAX];
    char path[VMC_PATH_MAX];
    bool has_lockspace;
    char lockspace[VMC_NAME_MAX];
    unsigned long long offset;
} vmc_lease;

/* One domain as libvirt describes it to the lock manager (plain data: it crosses the socket). */
typedef struct vmc_domain {
    char name[VMC_NAME_MAX];
    unsigned char uuid[16];
    unsigned int id;
    pid_t pid;                      /* its QEMU (stand-in) pid; 0 before it is spawned */
    int action;                     /* virDomainLockFailureAction */
    unsigned int ndisks;
    vmc_disk disks[VMC_MAX_DISKS];
    unsigned int nleases;           /* 0 or 1 */
    vmc_lease lease;
} vmc_domain;

/* Calls libvirt never makes, made by patching the plugin's own table for one call. */
typedef enum {
    VMC_SHIM_NONE,
    VMC_SHIM_EXTRA_PARAM,           /* drvNew gets a sixth param with an unknown key */
    VMC_SHIM_OBJECT_TYPE,           /* drvNew gets object type shim_value */
    VMC_SHIM_RESOURCE_TYPE,         /* every drvAddResource gets resource type shim_value */
} vmc_shim;

typedef enum {
    VMC_CALL_NONE,                  /* drvNew and drvAddResource only */
    VMC_CALL_ACQUIRE,
    VMC_CALL_RELEASE,
    VMC_CALL_INQUIRE,
} vmc_call_op;

/* A low-level sequence on one context: drvNew, drvAddResource per resource, the call, drvFree. */
typedef struct vmc_call {
    unsigned int new_flags;
    bool with_uri;
    vmc_shim shim;
    unsigned int shim_value;
    vmc_call_op op;
    unsigned int op_flags;
    bool pass_fd;                   /* acquire: pass &fd (the worker closes what comes back) */
    bool pass_state;                /* release/inquire: pass &state */
    bool with_state;                /* acquire: pass state (else NULL) */
    char state[VMC_STATE_MAX];
} vmc_call;

/* How a special guest behaves (see VMC_REQ_SPECIAL_SPAWN). */
typedef enum {
    VMC_SPECIAL_HOOK,               /* runs the start hook and keeps the holder descriptor */
    VMC_SPECIAL_NO_HOOK,            /* registers nothing: an owner without a holder connection */
} vmc_special_mode;

/* Commands to a special guest. */
#define VMC_SPECIAL_PROBE 'p'       /* send ACQUIRE_RESOURCE(path "", disk 0) over the holder fd */
#define VMC_SPECIAL_CLOSE 'c'       /* close the holder descriptor, keep running */

typedef enum {
    VMC_REQ_SPAWN,                  /* libvirt's start: fork, start hook, exec the stand-in QEMU */
    VMC_REQ_ACQUIRE,                /* CPU start / resume: new(uri), all, acquire(state, 0) */
    VMC_REQ_RELEASE,                /* pause: new(no uri), all, release(&state) */
    VMC_REQ_INQUIRE,                /* migration begin: new(no uri), all, inquire(&state) */
    VMC_REQ_ATTACH,                 /* hotplug disk disk_index */
    VMC_REQ_DETACH,                 /* unplug disk disk_index */
    VMC_REQ_KILL,                   /* SIGKILL pid and reap it (a stop) */
    VMC_REQ_CALL,                   /* the low-level sequence in call */
    VMC_REQ_SPECIAL_SPAWN,          /* fork a guest that stays under the worker's control */
    VMC_REQ_SPECIAL_CTL,            /* send command ctl to special guest pid, wait for its answer */
    VMC_REQ_WAIT,                   /* wait up to timeout_ms for child pid to exit; reap it */
    VMC_REQ_EXIT,                   /* drvDeinit and exit */
} vmc_request_kind;

typedef struct vmc_request {
    vmc_request_kind kind;
    vmc_domain dom;
    unsigned int disk_index;
    bool with_state;                /* ACQUIRE: pass state (else NULL) */
    char state[VMC_STATE_MAX];
    pid_t pid;
    char ctl;
    int timeout_ms;
    vmc_special_mode special_mode;
    bool ignore_sigterm;
    vmc_call call;
} vmc_request;

typedef struct vmc_reply {
    int rc;                         /* 0 ok, -1 the plugin (or the step) failed: err says why */
    vml_error err;
    char failed_step[32];           /* VMC_REQ_CALL: which callback failed */
    pid_t pid;                      /* SPAWN / SPECIAL_SPAWN: the guest */
    bool state_set;                 /* the plugin returned a non-NULL state */
    bool state_truncated;
    char state[VMC_STATE_MAX];
    bool fd_given;                  /* acquire with &fd: the plugin left a descriptor */
    bool exited;                    /* WAIT: the process exited within the timeout */
    int wait_status;                /* WAIT: its wait status */
    long long elapsed_us;           /* WAIT: since the guest's last command (or the request) */
    unsigned int driver_version;    /* the worker's first reply: virLockDriverImpl.version */
    unsigned int driver_flags;      /* ... .flags */
    bool uses_libvirt;              /* ... the plugin brought libvirt.so.0 in */
} vmc_reply;

/* The suite's handle on one worker. */
typedef struct vmc_worker {
    pid_t pid;
    int sock;
    unsigned int number;            /* "libvirtd #N" in messages */
    unsigned int driver_version;    /* what the plugin's table says */
    unsigned int driver_flags;
    bool uses_libvirt;
} vmc_worker;

/*
 * Fork a worker that opens plugin_path with config_path (drvInit) and then serves requests.
 * stub_path is the stand-in QEMU.  Blocks until the plugin is open: on success *worker is
 * filled (stop it with vmc_worker_stop); on failure err holds the drvInit error (or why the
 * worker did not start) and no process is left.
 */
int vmc_worker_start(const char *plugin_path, const char *config_path, const char *stub_path,
                     unsigned int number, vmc_worker *worker, vml_error *err);

/*
 * One request and its reply.  Returns 0 when the worker answered (reply->rc then says what the
 * plugin did), -1 with err when the worker is gone or the exchange failed.
 */
int vmc_worker_call(vmc_worker *worker, const vmc_request *req, vmc_reply *reply, vml_error *err);

/* Ask the worker to exit (drvDeinit), and reap it.  Accepts a worker that never started (pid 0). */
void vmc_worker_stop(vmc_worker *worker);

#endif
