/* test_vml_wire.c: TAP tests of vml_wire and the generated XDR: round trips, virtlockd's worked example bytes, hostile input and the blocking client. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_wire.h"
#include "vml_test.h"

/* ---- helpers ---- */

/* Parse hex digits (blanks and '|' ignored) into buf; the byte count. */
static size_t from_hex(const char *hex, unsigned char *buf, size_t max)
{
    size_t n = 0;
    int hi = -1;

    for (; *hex; hex++) {
        int v;

        if (*hex >= '0' && *hex <= '9')
            v = *hex - '0';
        else if (*hex >= 'a' && *hex <= 'f')
            v = *hex - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            if (n < max)
                buf[n] = (unsigned char)(hi << 4 | v);
            n++;
            hi = -1;
        }
    }
    return n;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static bool check_bytes(const unsigned char *got, size_t got_len, const unsigned char *want,
                        size_t want_len, const char *what)
{
    bool same = got_len == want_len && memcmp(got, want, want_len) == 0;

    VML_CHECK(same, what);
    if (!same) {
        printf("#   got %zu bytes:", got_len);
        for (size_t i = 0; i < got_len; i++)
            printf("%s%02x", i % 4 ? "" : " ", got[i]);
        printf("\n#   want %zu bytes\n", want_len);
    }
    return same;
}

static __attribute__((noinline)) const char *str(const char *s)
{
    return s;
}

static vml_rpc_header call_header(unsigned int prog, int proc, unsigned int serial)
{
    vml_rpc_header hdr = {
        .prog = prog, .vers = 1, .proc = proc,
        .type = VML_RPC_CALL, .serial = serial, .status = VML_RPC_OK,
    };
    return hdr;
}

/*
 * Encode payload under a call header, check the header decodes back, then decode the payload
 * into out (zeroed here; the caller xdr_frees it).  Returns true when everything worked.
 */
static bool round_trip(int proc, xdrproc_t xdr, void *in, void *out, size_t out_size,
                       const char *what)
{
    vml_rpc_header hdr = call_header(VML_LS_PROGRAM, proc, 77);
    vml_rpc_header back;
    unsigned char *msg = NULL;
    size_t len = 0;
    size_t framed = 0;
    bool ok;

    memset(out, 0, out_size);
    memset(&back, 0, sizeof(back));
    ok = vml_wire_encode(&hdr, xdr, in, &msg, &len) == 0 &&
         vml_wire_frame_length(msg, VML_WIRE_MAX_MESSAGE, &framed) == 0 && framed == len &&
         len % 4 == 0 &&
         vml_wire_decode_header(msg, len, &back) == 0 && back.prog == hdr.prog &&
         back.vers == 1 && back.proc == proc && back.type == VML_RPC_CALL &&
         back.serial == 77 && back.status == VML_RPC_OK &&
         vml_wire_decode_payload(msg, len, xdr, out) == 0;
    VML_CHECK(ok, what);
    free(msg);
    return ok;
}

/* ---- round trips ---- */

static void test_round_trips(void)
{
    static const char uuid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

    {
        vml_ls_register_args in, out;

        memcpy(in.owner.uuid, uuid, 16);
        in.owner.name = (char *)"domain-\xc3\xa9";
        in.owner.id = 7;
        in.owner.pid = 4242;
        in.flags = 0;
        if (round_trip(VML_LS_PROC_REGISTER, (xdrproc_t)xdr_vml_ls_register_args, &in, &out,
                       sizeof(out), "REGISTER args round trip"))
            VML_CHECK(memcmp(out.owner.uuid, uuid, 16) == 0 &&
                      strcmp(out.owner.name, in.owner.name) == 0 && out.owner.id == 7 &&
                      out.owner.pid == 4242 && out.flags == 0, "  ... every field comes back");
        xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&out);
    }
    {
        vml_ls_restrict_args in = { .flags = 0xdeadbeef }, out;

        if (round_trip(VML_LS_PROC_RESTRICT, (xdrproc_t)xdr_vml_ls_restrict_args, &in, &out,
                       sizeof(out), "RESTRICT args round trip"))
            VML_CHECK(out.flags == 0xdeadbeef, "  ... flags come back");
    }
    {
        vml_ls_new_args in = { .path = (char *)"/var/lib/vmlockd/files", .flags = 3 }, out;

        if (round_trip(VML_LS_PROC_NEW, (xdrproc_t)xdr_vml_ls_new_args, &in, &out, sizeof(out),
                       "NEW args round trip"))
            VML_CHECK(strcmp(out.path, in.path) == 0 && out.flags == 3, "  ... path and flags");
        xdr_free((xdrproc_t)xdr_vml_ls_new_args, (char *)&out);
    }
    {
        static const int procs[] = { VML_LS_PROC_CREATE_RESOURCE, VML_LS_PROC_DELETE_RESOURCE,
                                     VML_LS_PROC_ACQUIRE_RESOURCE, VML_LS_PROC_RELEASE_RESOURCE };

        for (size_t i = 0; i < 4; i++) {
            vml_ls_resource_args in = {
                .path = (char *)"", .name = (char *)"/images/a b.qcow2",
                .flags = VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE,
            }, out;
            char what[80];

            snprintf(what, sizeof(what), "resource args (procedure %d) round trip", procs[i]);
            if (round_trip(procs[i], (xdrproc_t)xdr_vml_ls_resource_args, &in, &out,
                           sizeof(out), what))
                VML_CHECK(strcmp(out.path, "") == 0 && strcmp(out.name, in.name) == 0 &&
                          out.flags == 3, "  ... empty lockspace, name and flags");
            xdr_free((xdrproc_t)xdr_vml_ls_resource_args, (char *)&out);
        }
    }
    {
        vml_ls_create_lockspace_args in = { .path = (char *)"/srv/ls" }, out;

        if (round_trip(VML_LS_PROC_CREATE_LOCKSPACE,
                       (xdrproc_t)xdr_vml_ls_create_lockspace_args, &in, &out, sizeof(out),
                       "CREATE_LOCKSPACE args round trip"))
            VML_CHECK(strcmp(out.path, "/srv/ls") == 0, "  ... path");
        xdr_free((xdrproc_t)xdr_vml_ls_create_lockspace_args, (char *)&out);
    }
    {
        vml_ext_resource res[2] = {
            { (char *)"/ls", (char *)"abc", (char *)"/img/a", VML_LS_ACQUIRE_AUTOCREATE },
            { (char *)"", (char *)"/img/b", (char *)"", VML_LS_ACQUIRE_SHARED },
        };
        vml_ext_batch_args in, out;

        memset(&in, 0, sizeof(in));
        memcpy(in.owner.uuid, uuid, 16);
        in.owner.name = (char *)"vm";
        in.owner.id = 1;
        in.owner.pid = 99;
        in.resources.resources_len = 2;
        in.resources.resources_val = res;
        if (round_trip(VML_EXT_PROC_BATCH_ACQUIRE, (xdrproc_t)xdr_vml_ext_batch_args, &in, &out,
                       sizeof(out), "BATCH args round trip"))
            VML_CHECK(out.resources.resources_len == 2 &&
                      strcmp(out.resources.resources_val[0].name, "abc") == 0 &&
                      strcmp(out.resources.resources_val[1].lockspace, "") == 0 &&
                      out.resources.resources_val[1].flags == VML_LS_ACQUIRE_SHARED &&
                      out.owner.pid == 99, "  ... both resources and the owner");
        xdr_free((xdrproc_t)xdr_vml_ext_batch_args, (char *)&out);
    }
    {
        vml_ext_holder holders[2];
        vml_ext_lease lease;
        vml_ext_list_ret in, out;

        memset(holders, 0, sizeof(holders));
        holders[0].owner.name = (char *)"a";
        holders[0].since_usec = 1700000000123456LL;
        holders[1].owner.name = (char *)"b";
        holders[1].since_usec = -1;
        memset(&lease, 0, sizeof(lease));
        lease.lockspace = (char *)"/ls";
        lease.name = (char *)"n";
        lease.path = (char *)"/ls/n";
        lease.disk = (char *)"/img";
        lease.flags = VML_LS_ACQUIRE_SHARED;
        lease.holders.holders_len = 2;
        lease.holders.holders_val = holders;
        in.leases.leases_len = 1;
        in.leases.leases_val = &lease;
        in.next_cursor = 5;
        in.total = 9;
        if (round_trip(VML_EXT_PROC_LIST, (xdrproc_t)xdr_vml_ext_list_ret, &in, &out,
                       sizeof(out), "LIST reply round trip"))
            VML_CHECK(out.leases.leases_len == 1 && out.next_cursor == 5 && out.total == 9 &&
                      out.leases.leases_val[0].holders.holders_len == 2 &&
                      out.leases.leases_val[0].holders.holders_val[0].since_usec ==
                          1700000000123456LL &&
                      out.leases.leases_val[0].holders.holders_val[1].since_usec == -1 &&
                      strcmp(out.leases.leases_val[0].path, "/ls/n") == 0,
                      "  ... lease, holders and 64-bit times");
        xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&out);
    }
    {
        vml_ext_list_args in = { .cursor = 3, .max = 1024, .flags = 0 }, out;

        if (round_trip(VML_EXT_PROC_LIST, (xdrproc_t)xdr_vml_ext_list_args, &in, &out,
                       sizeof(out), "LIST args round trip"))
            VML_CHECK(out.cursor == 3 && out.max == 1024, "  ... cursor and max");
    }
    {
        vml_ext_status_ret in, out;

        memset(&in, 0, sizeof(in));
        in.daemon_version = (char *)"0.1.0";
        in.pid = 1;
        in.uptime_usec = 123;
        in.acquires = 0xffffffffffffffffULL;
        in.owner_kills = 5;
        if (round_trip(VML_EXT_PROC_STATUS, (xdrproc_t)xdr_vml_ext_status_ret, &in, &out,
                       sizeof(out), "STATUS reply round trip"))
            VML_CHECK(strcmp(out.daemon_version, "0.1.0") == 0 &&
                      out.acquires == 0xffffffffffffffffULL && out.owner_kills == 5,
                      "  ... version and unsigned 64-bit counters");
        xdr_free((xdrproc_t)xdr_vml_ext_status_ret, (char *)&out);
    }
    {
        vml_rpc_header hdr = call_header(VML_LS_PROGRAM, VML_LS_PROC_REGISTER, 0);
        unsigned char *msg = NULL;
        size_t len = 0;

        VML_CHECK(vml_wire_encode(&hdr, NULL, NULL, &msg, &len) == 0 &&
                  len == VML_WIRE_MIN_MESSAGE, "an empty payload is a 28-byte message");
        free(msg);
    }
}

/* ---- virtlockd's own bytes (libvirt-lock-facts.md 5.4) ---- */

static void test_worked_examples(void)
{
    static const char register_hex[] =
        "00000040 0ea7beef 00000001 00000001 00000000 00000001 00000000 |"
        " c7a5fdbdedaf9455926ad65c16db1809 | 00000003 766d3100 | 00000001 | 0000393c | 00000000";
    static const char acquire_hex[] =
        "00000040 0ea7beef 00000001 00000006 00000000 00000004 00000000 |"
        " 00000011 2f7372762f6c6f636b73706163652f6c73 000000 | 00000003 61626300 | 00000002";
    static const char ok_reply_hex[] =
        "0000001c 0ea7beef 00000001 00000006 00000001 00000004 00000000";
    unsigned char want[128];
    size_t want_len;
    unsigned char *msg = NULL;
    size_t len = 0;

    {
        vml_rpc_header hdr = call_header(VML_LS_PROGRAM, VML_LS_PROC_REGISTER, 1);
        vml_ls_register_args args;

        memset(&args, 0, sizeof(args));
        from_hex("c7a5fdbdedaf9455926ad65c16db1809", (unsigned char *)args.owner.uuid, 16);
        args.owner.name = (char *)"vm1";
        args.owner.id = 1;
        args.owner.pid = 0x393c;
        want_len = from_hex(register_hex, want, sizeof(want));
        VML_CHECK(want_len == 64, "the REGISTER example is 64 bytes");
        VML_CHECK(vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ls_register_args, &args, &msg,
                                  &len) == 0, "encode REGISTER");
        check_bytes(msg, len, want, want_len, "  ... byte for byte virtlockd's REGISTER call");
        free(msg);
        msg = NULL;
    }
    {
        vml_rpc_header hdr = call_header(VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE, 4);
        vml_ls_resource_args args = {
            .path = (char *)"/srv/lockspace/ls", .name = (char *)"abc",
            .flags = VML_LS_ACQUIRE_AUTOCREATE,
        };
        vml_ls_resource_args back;
        vml_rpc_header back_hdr;

        want_len = from_hex(acquire_hex, want, sizeof(want));
        VML_CHECK(vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ls_resource_args, &args, &msg,
                                  &len) == 0, "encode ACQUIRE_RESOURCE");
        check_bytes(msg, len, want, want_len,
                    "  ... byte for byte virtlockd's ACQUIRE_RESOURCE call (padding included)");
        free(msg);
        msg = NULL;

        memset(&back, 0, sizeof(back));
        VML_CHECK(vml_wire_decode_header(want, want_len, &back_hdr) == 0 &&
                  back_hdr.proc == VML_LS_PROC_ACQUIRE_RESOURCE && back_hdr.serial == 4 &&
                  vml_wire_decode_payload(want, want_len, (xdrproc_t)xdr_vml_ls_resource_args,
                                          &back) == 0 &&
                  strcmp(back.path, "/srv/lockspace/ls") == 0 && strcmp(back.name, "abc") == 0 &&
                  back.flags == 2, "the example bytes decode to the same call");
        xdr_free((xdrproc_t)xdr_vml_ls_resource_args, (char *)&back);
    }
    {
        vml_rpc_header hdr = call_header(VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE, 4);

        hdr.type = VML_RPC_REPLY;
        want_len = from_hex(ok_reply_hex, want, sizeof(want));
        VML_CHECK(vml_wire_encode(&hdr, NULL, NULL, &msg, &len) == 0, "encode a success reply");
        check_bytes(msg, len, want, want_len, "  ... the 28 bytes virtlockd sends");
        free(msg);
        msg = NULL;
    }
    {
        /* the busy reply: header (prog, 1, 6, REPLY, serial, ERROR) and virtlockd's payload */
        vml_rpc_header call = call_header(VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE, 9);
        vml_rpc_header reply;
        vml_rpc_error payload;
        vml_error err, back;

        vml_error_clear(&err);
        vml_error_set(&err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                      "Lockspace resource '%s' is locked", "abc");
        VML_CHECK(vml_wire_encode_error(&call, &err, &msg, &len) == 0, "encode a busy reply");
        memset(&payload, 0, sizeof(payload));
        VML_CHECK(vml_wire_decode_header(msg, len, &reply) == 0 &&
                  reply.prog == VML_LS_PROGRAM && reply.vers == 1 && reply.proc == 6 &&
                  reply.type == VML_RPC_REPLY && reply.serial == 9 &&
                  reply.status == VML_RPC_ERROR, "  ... header echoes the call, REPLY, ERROR");
        if (VML_CHECK(vml_wire_decode_payload(msg, len, (xdrproc_t)xdr_vml_rpc_error,
                                              &payload) == 0, "  ... the payload decodes")) {
            VML_CHECK(payload.code == 87 && payload.domain == 51 && payload.level == 2,
                      "  ... code 87, domain 51, level 2");
            VML_CHECK(payload.message != NULL &&
                      strcmp(*payload.message,
                             "resource busy: Lockspace resource 'abc' is locked") == 0,
                      "  ... virtlockd's message");
            VML_CHECK(payload.str1 != NULL && strcmp(*payload.str1, "resource busy: %s") == 0,
                      "  ... str1 is the template");
            VML_CHECK(payload.str2 != NULL &&
                      strcmp(*payload.str2, "Lockspace resource 'abc' is locked") == 0,
                      "  ... str2 is the detail");
            VML_CHECK(payload.dom == NULL && payload.str3 == NULL && payload.net == NULL &&
                      payload.int1 == -1 && payload.int2 == -1,
                      "  ... dom, str3 and net absent, int1 = int2 = -1");
            vml_error_clear(&back);
            vml_wire_error_from_payload(&payload, &back);
            VML_CHECK(back.code == err.code && back.domain == err.domain &&
                      strcmp(back.message, err.message) == 0 &&
                      strcmp(back.detail, err.detail) == 0,
                      "  ... and becomes the same vml_error again");
        }
        xdr_free((xdrproc_t)xdr_vml_rpc_error, (char *)&payload);
        free(msg);
        msg = NULL;
    }
    {
        vml_rpc_error payload;
        vml_error back;

        memset(&payload, 0, sizeof(payload));
        payload.code = VIR_ERR_RPC;
        payload.domain = VIR_FROM_RPC;
        vml_error_clear(&back);
        vml_wire_error_from_payload(&payload, &back);
        VML_CHECK(back.code == VIR_ERR_RPC && back.message[0] != '\0',
                  "an error payload without a message still gives a message");
    }
}

/* ---- hostile input ---- */

/* A whole message: length word, call header, then payload bytes (len bytes). */
static unsigned char *frame(const unsigned char *payload, size_t len, size_t *total)
{
    unsigned char *msg = calloc(1, VML_WIRE_MIN_MESSAGE + len);
    vml_rpc_header hdr = call_header(VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE, 1);

    if (msg == NULL)
        abort();
    *total = VML_WIRE_MIN_MESSAGE + len;
    put_u32(msg, (uint32_t)*total);
    put_u32(msg + 4, hdr.prog);
    put_u32(msg + 8, hdr.vers);
    put_u32(msg + 12, (uint32_t)hdr.proc);
    memcpy(msg + VML_WIRE_MIN_MESSAGE, payload, len);
    return msg;
}

/* resource args with a path of path_len bytes of fill (declared length decl_len). */
static unsigned char *resource_payload(uint32_t decl_len, size_t path_len, char fill,
                                       size_t *len)
{
    size_t padded = (path_len + 3) & ~(size_t)3;
    unsigned char *p = calloc(1, 4 + padded + 8 + 4);
    size_t off = 0;

    if (p == NULL)
        abort();
    put_u32(p, decl_len);
    off = 4;
    memset(p + off, fill, path_len);
    off += padded;
    put_u32(p + off, 1);        /* name "x" */
    p[off + 4] = 'x';
    off += 8;
    put_u32(p + off, 0);        /* flags */
    off += 4;
    *len = off;
    return p;
}

static bool decodes(const unsigned char *payload, size_t len, xdrproc_t xdr, size_t size)
{
    size_t total;
    unsigned char *msg = frame(payload, len, &total);
    void *out = calloc(1, size);
    bool ok;

    if (out == NULL)
        abort();
    ok = vml_wire_decode_payload(msg, total, xdr, out) == 0;
    xdr_free(xdr, out);
    free(out);
    free(msg);
    return ok;
}

static void test_hostile(void)
{
    unsigned char word[4];
    size_t total = 0;
    unsigned char *payload;
    size_t len;

    put_u32(word, 27);
    VML_CHECK(vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &total) == -1,
              "a length word of 27 (< 28) is refused");
    put_u32(word, 0);
    VML_CHECK(vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &total) == -1,
              "a length word of 0 is refused");
    put_u32(word, 28);
    VML_CHECK(vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &total) == 0 && total == 28,
              "a length word of 28 is the smallest message");
    put_u32(word, VML_WIRE_MAX_MESSAGE);
    VML_CHECK(vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &total) == 0 &&
              total == 33554436, "the largest length word, 33554436, is accepted");
    put_u32(word, VML_WIRE_MAX_MESSAGE + 1);
    VML_CHECK(vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &total) == -1,
              "one more than the largest is refused");
    put_u32(word, 0xffffffffu);
    VML_CHECK(vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &total) == -1,
              "0xffffffff is refused");
    put_u32(word, 1025);
    VML_CHECK(vml_wire_frame_length(word, 1024, &total) == -1,
              "a caller's smaller maximum is honoured");

    {
        unsigned char msg[64];
        vml_rpc_header hdr;

        memset(msg, 0, sizeof(msg));
        VML_CHECK(vml_wire_decode_header(msg, 27, &hdr) == -1,
                  "a header shorter than 28 bytes is refused");
    }

    /* truncated and trailing bytes, on the REGISTER example */
    {
        static const char register_hex[] =
            "00000040 0ea7beef 00000001 00000001 00000000 00000001 00000000 "
            "c7a5fdbdedaf9455926ad65c16db1809 00000003 766d3100 00000001 0000393c 00000000 "
            "00000000";
        unsigned char msg[80];
        size_t n = from_hex(register_hex, msg, sizeof(msg));
        vml_ls_register_args out;

        VML_CHECK(n == 68, "REGISTER with 4 extra bytes");
        memset(&out, 0, sizeof(out));
        VML_CHECK(vml_wire_decode_payload(msg, 64, (xdrproc_t)xdr_vml_ls_register_args,
                                          &out) == 0, "the exact 64 bytes decode");
        xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&out);
        for (size_t cut = 1; cut <= 36; cut += 5) {
            char what[80];

            memset(&out, 0, sizeof(out));
            snprintf(what, sizeof(what), "REGISTER cut short by %zu bytes is refused", cut);
            VML_CHECK(vml_wire_decode_payload(msg, 64 - cut,
                                              (xdrproc_t)xdr_vml_ls_register_args, &out) == -1,
                      what);
            xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&out);
        }
        memset(&out, 0, sizeof(out));
        VML_CHECK(vml_wire_decode_payload(msg, 68, (xdrproc_t)xdr_vml_ls_register_args,
                                          &out) == -1, "4 trailing bytes are refused");
        xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&out);
        memset(&out, 0, sizeof(out));
        VML_CHECK(vml_wire_decode_payload(msg, 65, (xdrproc_t)xdr_vml_ls_register_args,
                                          &out) == -1, "1 trailing byte is refused");
        xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&out);
        memset(&out, 0, sizeof(out));
        put_u32(msg + 44, 0xffffffffu);     /* name length: 4 GiB */
        VML_CHECK(vml_wire_decode_payload(msg, 64, (xdrproc_t)xdr_vml_ls_register_args,
                                          &out) == -1, "a 4 GiB string length is refused");
        xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&out);
        memset(&out, 0, sizeof(out));
        put_u32(msg + 44, 5);               /* name length past its bytes */
        VML_CHECK(vml_wire_decode_payload(msg, 64, (xdrproc_t)xdr_vml_ls_register_args,
                                          &out) == -1,
                  "a string length reaching past the message is refused");
        xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&out);
    }

    /* string bounds */
    payload = resource_payload(65536, 65536, 'a', &len);
    VML_CHECK(decodes(payload, len, (xdrproc_t)xdr_vml_ls_resource_args,
                      sizeof(vml_ls_resource_args)), "a 65536-byte string is accepted");
    free(payload);
    payload = resource_payload(65537, 65537, 'a', &len);
    VML_CHECK(!decodes(payload, len, (xdrproc_t)xdr_vml_ls_resource_args,
                       sizeof(vml_ls_resource_args)), "a 65537-byte string is refused");
    free(payload);
    payload = resource_payload(4, 4, 'a', &len);
    VML_CHECK(decodes(payload, len, (xdrproc_t)xdr_vml_ls_resource_args,
                      sizeof(vml_ls_resource_args)), "the string 'aaaa' decodes");
    payload[4 + 2] = '\0';
    VML_CHECK(!decodes(payload, len, (xdrproc_t)xdr_vml_ls_resource_args,
                       sizeof(vml_ls_resource_args)),
              "'aa\\0a' (an embedded NUL) is refused");
    free(payload);
    {
        /* an error payload whose message string is over its bound */
        vml_rpc_error out;
        unsigned char *msg = calloc(1, VML_WIRE_MIN_MESSAGE + 16);

        put_u32(msg + VML_WIRE_MIN_MESSAGE, 1);         /* code */
        put_u32(msg + VML_WIRE_MIN_MESSAGE + 4, 7);     /* domain */
        put_u32(msg + VML_WIRE_MIN_MESSAGE + 8, 1);     /* message present */
        put_u32(msg + VML_WIRE_MIN_MESSAGE + 12, 65537);
        memset(&out, 0, sizeof(out));
        VML_CHECK(vml_wire_decode_payload(msg, VML_WIRE_MIN_MESSAGE + 16,
                                          (xdrproc_t)xdr_vml_rpc_error, &out) == -1,
                  "an error message over 65536 bytes is refused");
        xdr_free((xdrproc_t)xdr_vml_rpc_error, (char *)&out);
        free(msg);
    }

    /* array bounds */
    {
        unsigned char p[40];

        /* owner: uuid[16], name "" (len 0), id, pid; then the resource count */
        memset(p, 0, sizeof(p));
        put_u32(p + 28, VML_EXT_BATCH_MAX + 1);
        VML_CHECK(!decodes(p, 32, (xdrproc_t)xdr_vml_ext_batch_args,
                           sizeof(vml_ext_batch_args)),
                  "a batch of 4097 resources is refused");
        put_u32(p + 28, 0);
        put_u32(p + 32, 0);     /* flags */
        VML_CHECK(decodes(p, 36, (xdrproc_t)xdr_vml_ext_batch_args, sizeof(vml_ext_batch_args)),
                  "an empty batch decodes");
        memset(p, 0, sizeof(p));
        put_u32(p, VML_EXT_LIST_MAX + 1);
        VML_CHECK(!decodes(p, 12, (xdrproc_t)xdr_vml_ext_list_ret, sizeof(vml_ext_list_ret)),
                  "a LIST page of 1025 leases is refused");
        /* one lease: 4 empty strings, flags, then the holder count */
        memset(p, 0, sizeof(p));
        put_u32(p, 1);
        put_u32(p + 24, VML_EXT_HOLDERS_MAX + 1);
        VML_CHECK(!decodes(p, 36, (xdrproc_t)xdr_vml_ext_list_ret, sizeof(vml_ext_list_ret)),
                  "a lease with 4097 holders is refused");
    }

    /* counts within their bound that the message cannot hold: refused before allocating */
    {
        unsigned char p[64];

        memset(p, 0, sizeof(p));
        put_u32(p, VML_EXT_LIST_MAX);
        VML_CHECK(!decodes(p, 12, (xdrproc_t)xdr_vml_ext_list_ret, sizeof(vml_ext_list_ret)),
                  "a LIST page claiming 1024 leases in 12 bytes is refused");
        /* two leases of 4 empty strings, flags, no holders (24 bytes each), cursor, total */
        put_u32(p, 2);
        VML_CHECK(decodes(p, 4 + 48 + 8, (xdrproc_t)xdr_vml_ext_list_ret,
                          sizeof(vml_ext_list_ret)), "a LIST page of exactly 2 leases decodes");
        VML_CHECK(!decodes(p, 4 + 44 + 8, (xdrproc_t)xdr_vml_ext_list_ret,
                           sizeof(vml_ext_list_ret)), "the same page 4 bytes short is refused");
    }
    {
        unsigned char buf[16];
        char *bytes = NULL, *array = NULL;
        u_int count = 0;
        XDR xdrs;

        memset(buf, 0, sizeof(buf));
        put_u32(buf, 12);               /* 12 opaque bytes follow: exactly what is left */
        xdrmem_create(&xdrs, (char *)buf, 16, XDR_DECODE);
        VML_CHECK(vml_xdr_bytes_checked(&xdrs, &bytes, &count, 1 << 20) && count == 12 &&
                  xdr_getpos(&xdrs) == 16, "an opaque filling the rest of the stream decodes");
        free(bytes);
        bytes = NULL;
        put_u32(buf, 13);
        xdrmem_create(&xdrs, (char *)buf, 16, XDR_DECODE);
        VML_CHECK(!vml_xdr_bytes_checked(&xdrs, &bytes, &count, 1 << 20) && bytes == NULL,
                  "an opaque of 13 bytes in 12 is refused with nothing allocated");
        put_u32(buf, 1u << 20);
        xdrmem_create(&xdrs, (char *)buf, 16, XDR_DECODE);
        VML_CHECK(!vml_xdr_bytes_checked(&xdrs, &bytes, &count, 1 << 20) && bytes == NULL &&
                  xdr_getpos(&xdrs) == 0,
                  "an opaque of 1 MiB in 12 bytes is refused, the position unchanged");
        put_u32(buf, 4000000);
        xdrmem_create(&xdrs, (char *)buf, 16, XDR_DECODE);
        VML_CHECK(!vml_xdr_array_checked(&xdrs, &array, &count, 4194304, 64,
                                         (xdrproc_t)xdr_u_int) && array == NULL,
                  "an array claiming 4 million elements in 12 bytes is refused, nothing allocated");
        put_u32(buf, 3);
        xdrmem_create(&xdrs, (char *)buf, 16, XDR_DECODE);
        VML_CHECK(vml_xdr_array_checked(&xdrs, &array, &count, 4194304, sizeof(u_int),
                                        (xdrproc_t)xdr_u_int) && count == 3,
                  "an array of 3 words filling the stream decodes");
        free(array);
    }

    /* the encoder must not send what the decoder would refuse */
    {
        vml_rpc_header hdr = call_header(VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE, 1);
        char *long_path = malloc(65538);
        vml_ls_resource_args args = { .path = long_path, .name = (char *)"x", .flags = 0 };
        unsigned char *msg = NULL;
        size_t n = 0;

        memset(long_path, 'a', 65537);
        long_path[65537] = '\0';
        VML_CHECK(vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ls_resource_args, &args, &msg,
                                  &n) == -1, "encoding a 65537-byte string fails");
        free(msg);
        free(long_path);
    }
}

/* ---- the blocking client, against a peer process ---- */

typedef enum {
    PEER_OK,                /* empty success reply */
    PEER_BUSY,              /* error reply */
    PEER_WRONG_SERIAL,
    PEER_PAYLOAD,           /* success with 4 unexpected bytes */
    PEER_SHORT_LENGTH,      /* length word 27 */
    PEER_CONTINUE,          /* status CONTINUE */
    PEER_TRUNCATED,         /* says 40 bytes, sends 28, closes */
    PEER_STATUS,            /* a STATUS reply payload */
    PEER_CLOSE,             /* closes without replying */
} peer_step;

static int read_exact(int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);

        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The peer: for each step read one call and answer as told; exit 0 if every call was well formed. */
static void __attribute__((noreturn)) run_peer(int fd, const peer_step *steps, size_t nsteps)
{
    for (size_t i = 0; i < nsteps; i++) {
        unsigned char call[4096];
        vml_rpc_header hdr;
        size_t total;
        unsigned char *reply = NULL;
        size_t reply_len = 0;
        vml_error err;

        if (read_exact(fd, call, 4) < 0 ||
            vml_wire_frame_length(call, sizeof(call), &total) < 0 ||
            read_exact(fd, call + 4, total - 4) < 0 ||
            vml_wire_decode_header(call, total, &hdr) < 0 || hdr.type != VML_RPC_CALL ||
            hdr.serial != i)
            _exit(10 + (int)i);
        hdr.type = VML_RPC_REPLY;
        vml_error_clear(&err);
        switch (steps[i]) {
        case PEER_OK:
            vml_wire_encode(&hdr, NULL, NULL, &reply, &reply_len);
            break;
        case PEER_BUSY:
            vml_error_set(&err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                          "Lockspace resource 'abc' is locked");
            vml_wire_encode_error(&hdr, &err, &reply, &reply_len);
            break;
        case PEER_WRONG_SERIAL:
            hdr.serial++;
            vml_wire_encode(&hdr, NULL, NULL, &reply, &reply_len);
            break;
        case PEER_PAYLOAD: {
            vml_ls_restrict_args extra = { 0 };

            vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ls_restrict_args, &extra, &reply,
                            &reply_len);
            break;
        }
        case PEER_SHORT_LENGTH:
            vml_wire_encode(&hdr, NULL, NULL, &reply, &reply_len);
            put_u32(reply, 27);
            break;
        case PEER_CONTINUE:
            hdr.status = VML_RPC_CONTINUE;
            vml_wire_encode(&hdr, NULL, NULL, &reply, &reply_len);
            break;
        case PEER_TRUNCATED:
            vml_wire_encode(&hdr, NULL, NULL, &reply, &reply_len);
            put_u32(reply, 40);
            break;
        case PEER_STATUS: {
            vml_ext_status_ret st;

            memset(&st, 0, sizeof(st));
            st.daemon_version = (char *)"9.9.9";
            st.leases = 3;
            vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ext_status_ret, &st, &reply, &reply_len);
            break;
        }
        case PEER_CLOSE:
            _exit(0);
        }
        if (reply == NULL || write(fd, reply, reply_len) != (ssize_t)reply_len)
            _exit(30 + (int)i);
        free(reply);
        if (steps[i] == PEER_TRUNCATED || steps[i] == PEER_SHORT_LENGTH)
            _exit(0);
    }
    _exit(0);
}

/* Start a peer on a socketpair; the client gets the other end. */
static pid_t start_peer(vml_client *client, const peer_step *steps, size_t nsteps)
{
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        run_peer(sv[1], steps, nsteps);
    }
    close(sv[1]);
    client->fd = sv[0];
    client->serial = 0;
    return pid;
}

static int finish_peer(vml_client *client, pid_t pid)
{
    int status = -1;

    vml_client_close(client);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static int call_restrict(vml_client *client, vml_error *err)
{
    vml_ls_restrict_args args = { 0 };

    vml_error_clear(err);
    return vml_client_call(client, VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION,
                           VML_LS_PROC_RESTRICT, (xdrproc_t)xdr_vml_ls_restrict_args, &args,
                           NULL, NULL, err);
}

static void test_client_calls(void)
{
    static const peer_step steps[] = {
        PEER_OK, PEER_BUSY, PEER_STATUS, PEER_WRONG_SERIAL, PEER_PAYLOAD, PEER_CONTINUE,
        PEER_CLOSE,
    };
    vml_client client = { -1, 0 };
    vml_error err;
    pid_t peer = start_peer(&client, steps, sizeof(steps) / sizeof(steps[0]));

    if (!VML_CHECK(peer > 0, "start a peer process"))
        return;
    VML_CHECK(call_restrict(&client, &err) == 0 && client.serial == 1,
              "a call with an empty success reply succeeds; serials start at 0");
    VML_CHECK(call_restrict(&client, &err) == -1 && err.code == VIR_ERR_RESOURCE_BUSY &&
              err.domain == VIR_FROM_LOCKSPACE, "an error reply fails with the peer's code");
    VML_CHECK_STR(str(err.message), "resource busy: Lockspace resource 'abc' is locked",
                  "  ... and the peer's message");
    {
        vml_ext_status_ret st;

        memset(&st, 0, sizeof(st));
        vml_error_clear(&err);
        VML_CHECK(vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                                  VML_EXT_PROC_STATUS, NULL, NULL,
                                  (xdrproc_t)xdr_vml_ext_status_ret, &st, &err) == 0 &&
                  st.daemon_version != NULL && strcmp(st.daemon_version, "9.9.9") == 0 &&
                  st.leases == 3, "a reply payload is decoded into ret");
        xdr_free((xdrproc_t)xdr_vml_ext_status_ret, (char *)&st);
    }
    VML_CHECK(call_restrict(&client, &err) == -1 && err.code == VIR_ERR_RPC &&
              strstr(err.message, "unexpected reply header") != NULL,
              "a reply with another serial is refused");
    VML_CHECK(call_restrict(&client, &err) == -1 && err.code == VIR_ERR_RPC &&
              strstr(err.message, "unexpected reply payload") != NULL,
              "a payload where none is expected is refused");
    VML_CHECK(call_restrict(&client, &err) == -1 && err.code == VIR_ERR_RPC &&
              strstr(err.message, "Unexpected message status 2") != NULL,
              "status CONTINUE is refused");
    VML_CHECK(call_restrict(&client, &err) == -1 && err.code == VIR_ERR_RPC &&
              strstr(err.message, "closed the connection") != NULL,
              "a peer that hangs up is reported as such");
    VML_CHECK(finish_peer(&client, peer) == 0, "the peer saw well-formed calls, serials 0..6");

    {
        static const peer_step short_steps[] = { PEER_SHORT_LENGTH };

        peer = start_peer(&client, short_steps, 1);
        VML_CHECK(call_restrict(&client, &err) == -1 && err.code == VIR_ERR_RPC &&
                  strstr(err.message, "malformed reply length") != NULL,
                  "a reply length word of 27 is refused");
        finish_peer(&client, peer);
    }
    {
        static const peer_step trunc_steps[] = { PEER_TRUNCATED };

        peer = start_peer(&client, trunc_steps, 1);
        VML_CHECK(call_restrict(&client, &err) == -1 && err.code == VIR_ERR_RPC &&
                  strstr(err.message, "truncated reply") != NULL,
                  "a reply shorter than its length word is refused");
        finish_peer(&client, peer);
    }
}

static void test_client_connect(void)
{
    char dir[] = "/tmp/vml-wire-test-XXXXXX";
    char path[64];
    char too_long[200];
    char abstract[64];
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    vml_client client = { -1, 0 };
    vml_error err;
    int listener;
    int holder;
    struct stat a, b;

    vml_error_clear(&err);
    VML_CHECK(vml_client_connect(&client, "", &err) == -1 && client.fd == -1,
              "an empty socket path is refused");
    memset(too_long, 'x', sizeof(too_long) - 1);
    too_long[0] = '/';
    too_long[sizeof(too_long) - 1] = '\0';
    VML_CHECK(vml_client_connect(&client, too_long, &err) == -1 &&
              strstr(err.message, "longer than 107 bytes") != NULL,
              "a socket path over 107 bytes is refused, saying so");
    VML_CHECK(vml_client_connect(&client, "/nonexistent-vml/sock", &err) == -1 &&
              err.code == VIR_ERR_SYSTEM_ERROR, "connecting to a missing socket fails");
    VML_CHECK_STR(str(err.message),
                  "Failed to connect socket to '/nonexistent-vml/sock': No such file or directory",
                  "  ... with libvirt's words");

    if (!VML_CHECK(mkdtemp(dir) != NULL, "temp dir"))
        return;
    snprintf(path, sizeof(path), "%s/sock", dir);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    VML_CHECK(listener >= 0 && bind(listener, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
              listen(listener, 4) == 0, "listen on a socket path");
    VML_CHECK(vml_client_connect(&client, path, &err) == 0 && client.fd >= 0 &&
              client.serial == 0, "connect to a socket path");
    VML_CHECK((fcntl(client.fd, F_GETFD) & FD_CLOEXEC) != 0, "  ... the socket is close-on-exec");
    holder = vml_client_dup_holder(&client, &err);
    VML_CHECK(holder >= 3 && (fcntl(holder, F_GETFD) & FD_CLOEXEC) == 0,
              "the holder duplicate is not close-on-exec (QEMU inherits it)");
    VML_CHECK(fstat(holder, &a) == 0 && fstat(client.fd, &b) == 0 && a.st_ino == b.st_ino,
              "  ... and is the same connection");
    close(holder);
    vml_client_close(&client);
    VML_CHECK(client.fd == -1, "close marks the client closed");
    vml_client_close(&client);
    vml_client_close(NULL);
    close(listener);
    unlink(path);
    rmdir(dir);

    snprintf(abstract, sizeof(abstract), "@vml-wire-test-%ld", (long)getpid());
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path + 1, abstract + 1, strlen(abstract) - 1);
    VML_CHECK(listener >= 0 &&
              bind(listener, (struct sockaddr *)&addr,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(abstract))) == 0 &&
              listen(listener, 4) == 0, "listen on an abstract socket");
    VML_CHECK(vml_client_connect(&client, abstract, &err) == 0,
              "'@name' connects to the abstract socket 'name'");
    vml_client_close(&client);
    close(listener);
}

int main(void)
{
    test_round_trips();
    test_worked_examples();
    test_hostile();
    test_client_calls();
    test_client_connect();
    return vml_test_done();
}
