/* lt_bench.c: times the 1-disk acquire/release cycle (BATCH_ACQUIRE + BATCH_RELEASE, extension v1) against a running daemon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vml_wire.h"

/*
 * usage: lt_bench SOCKET LOCKSPACE NAME CYCLES
 * LOCKSPACE "" is the default (direct) lockspace: NAME must then be an existing file.  Each
 * cycle opens one connection per call, as the plugin does.  The owner is this process.
 * Prints "cycles N total_ms T per_cycle_us U".
 */

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int one_call(const char *sock, int proc, vml_ext_batch_args *args)
{
    vml_client client = { .fd = -1 };
    vml_error err = { 0 };
    int rc = -1;

    if (vml_client_connect(&client, sock, &err) == 0 &&
        vml_client_call(&client, VML_EXT_PROGRAM, 1, proc, (xdrproc_t)xdr_vml_ext_batch_args,
                        args, NULL, NULL, &err) == 0)
        rc = 0;
    if (rc < 0)
        fprintf(stderr, "lt_bench: %s\n", err.message);
    vml_client_close(&client);
    return rc;
}

int main(int argc, char **argv)
{
    vml_ext_resource res = { 0 };
    vml_ext_batch_args args = { 0 };
    char name[] = "lt_bench";
    long cycles;
    double start, total;

    if (argc != 5 || (cycles = strtol(argv[4], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: lt_bench SOCKET LOCKSPACE NAME CYCLES\n");
        return 2;
    }
    res.lockspace = argv[2];
    res.name = argv[3];
    res.disk = argv[3];
    res.flags = argv[2][0] != '\0' ? VML_LS_ACQUIRE_AUTOCREATE : 0;
    memset(args.owner.uuid, 0x5a, sizeof(args.owner.uuid));
    args.owner.name = name;
    args.owner.id = 1;
    args.owner.pid = (unsigned int)getpid();
    args.resources.resources_len = 1;
    args.resources.resources_val = &res;
    if (argv[2][0] != '\0') {
        vml_client client = { .fd = -1 };
        vml_error err = { 0 };
        vml_ls_create_lockspace_args ls = { .path = argv[2] };

        if (vml_client_connect(&client, argv[1], &err) < 0 ||
            vml_client_call(&client, VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION,
                            VML_LS_PROC_CREATE_LOCKSPACE,
                            (xdrproc_t)xdr_vml_ls_create_lockspace_args, &ls, NULL, NULL,
                            &err) < 0) {
            fprintf(stderr, "lt_bench: %s\n", err.message);
            return 1;
        }
        vml_client_close(&client);
    }
    start = now_ms();
    for (long i = 0; i < cycles; i++) {
        if (one_call(argv[1], VML_EXT_PROC_BATCH_ACQUIRE, &args) < 0 ||
            one_call(argv[1], VML_EXT_PROC_BATCH_RELEASE, &args) < 0)
            return 1;
    }
    total = now_ms() - start;
    printf("cycles %ld total_ms %.1f per_cycle_us %.1f\n", cycles, total,
           total * 1000.0 / (double)cycles);
    return 0;
}
