/* test_vmlockctl.c: TAP tests of vmlockctl against a scripted fake admin daemon: paging, text and JSON output (escaping), errors, usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_wire.h"
#include "vml_test.h"

static char dir[] = "/tmp/vmlockctl-test-XXXXXX";
static char sock_path[64];
static char out_path[128];
static char err_path[128];
static int listener = -1;

typedef enum {
    SERVE_PAGES,        /* three LIST pages (one empty), two leases */
    SERVE_EMPTY,        /* LIST: no leases */
    SERVE_STATUS,       /* STATUS version 2 */
    SERVE_STATUS_V1,    /* STATUS version 2 refused as an older daemon refuses it, version 1 */
    SERVE_ERROR,        /* every call: an error reply */
    SERVE_STUCK,        /* LIST: the cursor stops advancing */
    SERVE_HANGUP,       /* closes without replying */
} serve_mode;

/* A holder name with every kind of character the escapers must handle. */
#define WEIRD_NAME "we\"ird\\na\nme\t\x01\xff\xc3\xa9"

typedef struct result {
    int status;
    char out[8192];
    char err[4096];
} result;

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

static void send_reply(int fd, vml_rpc_header *hdr, xdrproc_t proc, void *ret)
{
    unsigned char *msg = NULL;
    size_t len = 0;

    hdr->type = VML_RPC_REPLY;
    hdr->status = VML_RPC_OK;
    if (vml_wire_encode(hdr, proc, ret, &msg, &len) < 0 || write(fd, msg, len) != (ssize_t)len)
        _exit(20);
    free(msg);
}

static void send_error(int fd, const vml_rpc_header *hdr, int code, const char *text)
{
    unsigned char *msg = NULL;
    size_t len = 0;
    vml_error err;

    vml_error_clear(&err);
    vml_error_set(&err, VIR_FROM_RPC, code, "%s", text);
    if (vml_wire_encode_error(hdr, &err, &msg, &len) < 0 || write(fd, msg, len) != (ssize_t)len)
        _exit(21);
    free(msg);
}

/* The LIST page for a cursor in SERVE_PAGES mode; strings are static. */
static void page_for(unsigned int cursor, vml_ext_list_ret *page)
{
    static vml_ext_holder holder_a;
    static vml_ext_holder holders_b[2];
    static vml_ext_lease lease_a;
    static vml_ext_lease lease_b;

    memset(page, 0, sizeof(*page));
    memset(&holder_a, 0, sizeof(holder_a));
    for (int i = 0; i < 16; i++)
        holder_a.owner.uuid[i] = (char)(0x11 * i);
    holder_a.owner.name = (char *)"vm1";
    holder_a.owner.id = 1;
    holder_a.owner.pid = 100;
    holder_a.since_usec = 1700000000123456LL;
    lease_a.lockspace = (char *)"";
    lease_a.name = (char *)"/img/a.img";
    lease_a.path = (char *)"/img/a.img";
    lease_a.disk = (char *)"/img/a.img";
    lease_a.flags = 0;
    lease_a.holders.holders_len = 1;
    lease_a.holders.holders_val = &holder_a;

    memset(holders_b, 0, sizeof(holders_b));
    memset(holders_b[0].owner.uuid, 0xab, 16);
    holders_b[0].owner.name = (char *)WEIRD_NAME;
    holders_b[0].owner.id = 2;
    holders_b[0].owner.pid = 200;
    holders_b[0].since_usec = 0;
    holders_b[1].owner.name = (char *)"vm3";
    holders_b[1].owner.id = 3;
    holders_b[1].owner.pid = 300;
    holders_b[1].since_usec = -1;
    lease_b.lockspace = (char *)"/var/lib/ls";
    lease_b.name = (char *)"0123abcd";
    lease_b.path = (char *)"/var/lib/ls/0123abcd";
    lease_b.disk = (char *)"";
    lease_b.flags = VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE;
    lease_b.holders.holders_len = 2;
    lease_b.holders.holders_val = holders_b;

    page->total = 2;
    if (cursor == 0) {
        page->leases.leases_len = 1;
        page->leases.leases_val = &lease_a;
        page->next_cursor = 7;
    } else if (cursor == 7) {
        page->next_cursor = 9;      /* an empty page that is not the last */
    } else if (cursor == 9) {
        page->leases.leases_len = 1;
        page->leases.leases_val = &lease_b;
        page->next_cursor = 0;
    } else {
        _exit(22);                  /* the client invented a cursor */
    }
}

/* The fake daemon: one connection, answered per mode.  Exit 0 if every call was well formed. */
static void __attribute__((noreturn)) serve(serve_mode mode)
{
    int fd = accept(listener, NULL, NULL);
    unsigned int calls = 0;

    if (fd < 0)
        _exit(10);
    for (;;) {
        unsigned char buf[65536];
        vml_rpc_header hdr;
        size_t total;

        if (read_exact(fd, buf, 4) < 0)
            _exit(0);       /* the client is done */
        if (vml_wire_frame_length(buf, sizeof(buf), &total) < 0 ||
            read_exact(fd, buf + 4, total - 4) < 0 || vml_wire_decode_header(buf, total, &hdr) < 0)
            _exit(11);
        if (hdr.prog != VML_EXT_PROGRAM || hdr.type != VML_RPC_CALL || hdr.serial != calls++ ||
            (hdr.vers != VML_EXT_PROTOCOL_VERSION &&
             !(hdr.vers == VML_EXT_PROTOCOL_VERSION_2 && hdr.proc == VML_EXT_PROC_STATUS)))
            _exit(12);
        if (mode == SERVE_HANGUP)
            _exit(0);
        if (mode == SERVE_ERROR) {
            send_error(fd, &hdr, VIR_ERR_OPERATION_DENIED, "the admin socket is closed to you");
            continue;
        }
        if (hdr.proc == VML_EXT_PROC_STATUS && hdr.vers == VML_EXT_PROTOCOL_VERSION_2 &&
            mode == SERVE_STATUS_V1) {
            send_error(fd, &hdr, VIR_ERR_RPC, "Cannot find program 1447906379 version 2");
        } else if (hdr.proc == VML_EXT_PROC_STATUS && hdr.vers == VML_EXT_PROTOCOL_VERSION_2) {
            vml_ext_status2_ret st;

            if (total != VML_WIRE_MIN_MESSAGE)
                _exit(13);
            memset(&st, 0, sizeof(st));
            st.daemon_version = (char *)"0.2.0-test";
            st.pid = 4321;
            st.uptime_usec = 3000001;
            st.lockspaces = 2;
            st.leases = 5;
            st.owners = 3;
            st.clients = 4;
            st.acquires = 9;
            st.conflicts = 7;
            st.owner_kills = 1;
            st.lost_leases = 2;
            st.check_rounds = 11;
            st.check_interval_ms = 10000;
            st.keeper_pid = 4322;
            st.reexecs = 1;
            st.adopted = 5;
            st.epoch = 0xe9;
            send_reply(fd, &hdr, (xdrproc_t)xdr_vml_ext_status2_ret, &st);
        } else if (hdr.proc == VML_EXT_PROC_STATUS) {
            vml_ext_status_ret st;

            if (total != VML_WIRE_MIN_MESSAGE)
                _exit(13);
            memset(&st, 0, sizeof(st));
            st.daemon_version = (char *)"0.1.0-test";
            st.pid = 4321;
            st.uptime_usec = 3000001;
            st.lockspaces = 2;
            st.leases = 5;
            st.owners = 3;
            st.clients = 4;
            st.acquires = 0xffffffffffffffffULL;
            st.conflicts = 7;
            st.owner_kills = 1;
            send_reply(fd, &hdr, (xdrproc_t)xdr_vml_ext_status_ret, &st);
        } else if (hdr.proc == VML_EXT_PROC_LIST) {
            vml_ext_list_args args;
            vml_ext_list_ret page;

            memset(&args, 0, sizeof(args));
            if (vml_wire_decode_payload(buf, total, (xdrproc_t)xdr_vml_ext_list_args, &args) < 0 ||
                args.max != VML_EXT_LIST_MAX || args.flags != 0)
                _exit(14);
            if (mode == SERVE_EMPTY) {
                memset(&page, 0, sizeof(page));
            } else if (mode == SERVE_STUCK) {
                memset(&page, 0, sizeof(page));
                page.next_cursor = 5;
            } else {
                page_for(args.cursor, &page);
            }
            send_reply(fd, &hdr, (xdrproc_t)xdr_vml_ext_list_ret, &page);
        } else {
            _exit(15);
        }
    }
}

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    if (f != NULL) {
        n = fread(buf, 1, len - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

/* Run vmlockctl (NULL-terminated arguments) against a daemon serving mode (or none). */
static int run(result *r, bool with_server, serve_mode mode, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    pid_t server = -1;
    pid_t client;
    int status = 0;
    int server_status = 0;

    argv[argc++] = (char *)VMLOCKCTL;
    va_start(ap, mode);
    while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;

    fflush(stdout);
    if (with_server) {
        server = fork();
        if (server == 0)
            serve(mode);
    }
    client = fork();
    if (client == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(99);
        execv(VMLOCKCTL, argv);
        _exit(98);
    }
    waitpid(client, &status, 0);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    slurp(out_path, r->out, sizeof(r->out));
    slurp(err_path, r->err, sizeof(r->err));
    if (with_server) {
        waitpid(server, &server_status, 0);
        return WIFEXITED(server_status) ? WEXITSTATUS(server_status) : 100;
    }
    return 0;
}

static bool check_out(const char *got, const char *want, const char *what)
{
    bool same = strcmp(got, want) == 0;

    VML_CHECK(same, what);
    if (!same)
        printf("#   got:\n%s#   want:\n%s", got, want);
    return same;
}

static void test_list(void)
{
    static const char want_text[] =
        "(direct) /img/a.img /img/a.img exclusive domain 'vm1' uuid "
        "00112233-4455-6677-8899-aabbccddeeff pid 100 since 2023-11-14T22:13:20.123456Z\n"
        "/var/lib/ls 0123abcd - shared domain 'we\"ird\\\\na\\x0ame\\x09\\x01\xff\xc3\xa9' uuid "
        "abababab-abab-abab-abab-abababababab pid 200 since 1970-01-01T00:00:00.000000Z, "
        "domain 'vm3' uuid 00000000-0000-0000-0000-000000000000 pid 300 since "
        "1969-12-31T23:59:59.999999Z\n";
    static const char want_json[] =
        "[\n"
        "  {\"lockspace\": \"\", \"direct\": true, \"resource\": \"/img/a.img\", "
        "\"path\": \"/img/a.img\", \"disk\": \"/img/a.img\", \"mode\": \"exclusive\", "
        "\"holders\": [{\"domain\": \"vm1\", \"uuid\": \"00112233-4455-6677-8899-aabbccddeeff\", "
        "\"id\": 1, \"pid\": 100, \"since\": \"2023-11-14T22:13:20.123456Z\", "
        "\"since_usec\": 1700000000123456}]},\n"
        "  {\"lockspace\": \"/var/lib/ls\", \"direct\": false, \"resource\": \"0123abcd\", "
        "\"path\": \"/var/lib/ls/0123abcd\", \"disk\": \"\", \"mode\": \"shared\", "
        "\"holders\": [{\"domain\": \"we\\\"ird\\\\na\\nme\\t\\u0001\\ufffd\xc3\xa9\", "
        "\"uuid\": \"abababab-abab-abab-abab-abababababab\", \"id\": 2, \"pid\": 200, "
        "\"since\": \"1970-01-01T00:00:00.000000Z\", \"since_usec\": 0}, "
        "{\"domain\": \"vm3\", \"uuid\": \"00000000-0000-0000-0000-000000000000\", \"id\": 3, "
        "\"pid\": 300, \"since\": \"1969-12-31T23:59:59.999999Z\", \"since_usec\": -1}]}\n"
        "]\n";
    result r;

    VML_CHECK(run(&r, true, SERVE_PAGES, "--socket", sock_path, "list", NULL) == 0 &&
              r.status == 0 && r.err[0] == '\0',
              "list pages through cursors 0, 7 (an empty page), 9 until next_cursor is 0");
    check_out(r.out, want_text, "  ... one line per lease; control characters escaped");
    VML_CHECK(run(&r, true, SERVE_PAGES, "--json", "--socket", sock_path, "list", NULL) == 0 &&
              r.status == 0, "list --json");
    check_out(r.out, want_json, "  ... a JSON array; quotes, backslashes, controls escaped, "
              "bytes that are not UTF-8 replaced");
    VML_CHECK(run(&r, true, SERVE_EMPTY, "--socket", sock_path, "list", NULL) == 0 &&
              r.status == 0 && r.out[0] == '\0', "no leases: no lines");
    VML_CHECK(run(&r, true, SERVE_EMPTY, "--socket", sock_path, "--json", "list", NULL) == 0 &&
              r.status == 0, "no leases, --json");
    check_out(r.out, "[]\n", "  ... an empty array");
    VML_CHECK(run(&r, true, SERVE_STUCK, "--socket", sock_path, "list", NULL) == 0 &&
              r.status == 1 && r.out[0] == '\0',
              "a daemon whose cursor does not advance: exit 1, no partial output");
    check_out(r.err, "error: the daemon's lease list did not advance past cursor 5\n",
              "  ... saying so");
}

static void test_status(void)
{
    result r;

    VML_CHECK(run(&r, true, SERVE_STATUS, "--socket", sock_path, "status", NULL) == 0 &&
              r.status == 0, "status");
    check_out(r.out, "version: 0.2.0-test\npid: 4321\nuptime: 3.000001s\nlockspaces: 2\n"
              "leases: 5\nowners: 3\nclients: 4\nacquires: 9\nconflicts: 7\nowner kills: 1\n"
              "lost leases: 2\nlease checks: every 10000 ms, 11 round(s) done\n"
              "keeper: pid 4322\nre-execs: 1\nadopted at start: 5\nepoch: 233\n",
              "  ... every field of STATUS version 2");
    VML_CHECK(run(&r, true, SERVE_STATUS, "--json", "--socket", sock_path, "status", NULL) == 0 &&
              r.status == 0, "status --json");
    check_out(r.out, "{\"daemon_version\": \"0.2.0-test\", \"pid\": 4321, \"uptime_usec\": "
              "3000001, \"lockspaces\": 2, \"leases\": 5, \"owners\": 3, \"clients\": 4, "
              "\"acquires\": 9, \"conflicts\": 7, \"owner_kills\": 1, \"lost_leases\": 2, "
              "\"check_rounds\": 11, \"check_interval_ms\": 10000, \"keeper_pid\": 4322, "
              "\"reexecs\": 1, \"adopted\": 5, \"epoch\": 233}\n", "  ... one JSON object");
    VML_CHECK(run(&r, true, SERVE_STATUS_V1, "--socket", sock_path, "status", NULL) == 0 &&
              r.status == 0, "status from a daemon without STATUS version 2");
    check_out(r.out, "version: 0.1.0-test\npid: 4321\nuptime: 3.000001s\nlockspaces: 2\n"
              "leases: 5\nowners: 3\nclients: 4\nacquires: 18446744073709551615\n"
              "conflicts: 7\nowner kills: 1\n", "  ... the version 1 fields");
    VML_CHECK(run(&r, true, SERVE_STATUS_V1, "--json", "--socket", sock_path, "status", NULL) == 0 &&
              r.status == 0, "status --json from a daemon without STATUS version 2");
    check_out(r.out, "{\"daemon_version\": \"0.1.0-test\", \"pid\": 4321, \"uptime_usec\": "
              "3000001, \"lockspaces\": 2, \"leases\": 5, \"owners\": 3, \"clients\": 4, "
              "\"acquires\": 18446744073709551615, \"conflicts\": 7, \"owner_kills\": 1}\n",
              "  ... one JSON object");
}

static void test_errors(void)
{
    result r;

    VML_CHECK(run(&r, true, SERVE_ERROR, "--socket", sock_path, "list", NULL) == 0 &&
              r.status == 1 && r.out[0] == '\0', "a daemon error: exit 1");
    check_out(r.err, "error: operation forbidden: the admin socket is closed to you\n",
              "  ... printing the daemon's message");
    VML_CHECK(run(&r, true, SERVE_HANGUP, "--socket", sock_path, "status", NULL) == 0 &&
              r.status == 1 && strstr(r.err, "closed the connection") != NULL,
              "a daemon that hangs up: exit 1");
    run(&r, false, SERVE_ERROR, "--socket", "/nonexistent-vml/admin-sock", "status", NULL);
    VML_CHECK(r.status == 1, "no daemon: exit 1");
    check_out(r.err, "error: Failed to connect socket to '/nonexistent-vml/admin-sock': "
              "No such file or directory\n", "  ... naming the socket");

    setenv("VMLOCKD_ADMIN_SOCK", sock_path, 1);
    VML_CHECK(run(&r, true, SERVE_STATUS, "status", NULL) == 0 && r.status == 0,
              "$VMLOCKD_ADMIN_SOCK names the socket");
    setenv("VMLOCKD_ADMIN_SOCK", "/nonexistent-vml/admin-sock", 1);
    VML_CHECK(run(&r, true, SERVE_STATUS, "--socket", sock_path, "status", NULL) == 0 &&
              r.status == 0, "--socket wins over $VMLOCKD_ADMIN_SOCK");
    unsetenv("VMLOCKD_ADMIN_SOCK");
}

static void test_usage(void)
{
    static const struct {
        const char *args[4];
        const char *needle;
    } cases[] = {
        { { NULL }, "no command given" },
        { { "frobnicate", NULL }, "unknown command (expected list, status, who, break, check-leases, shutdown, check or doctor): 'frobnicate'" },
        { { "--bogus", "list", NULL }, "unknown option '--bogus'" },
        { { "list", "extra", NULL }, "unexpected argument 'extra'" },
        { { "list", "--socket", NULL }, "this option needs a value: '--socket'" },
        { { "--socket", "", "list", NULL }, "--socket needs a path" },
    };
    result r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[128];

        run(&r, false, SERVE_ERROR, cases[i].args[0], cases[i].args[1], cases[i].args[2], NULL);
        snprintf(what, sizeof(what), "usage error %zu: exit 2, '%s'", i + 1, cases[i].needle);
        VML_CHECK(r.status == 2 && strstr(r.err, cases[i].needle) != NULL &&
                  strstr(r.err, "Try 'vmlockctl --help'.") != NULL && r.out[0] == '\0', what);
        if (r.status != 2 || strstr(r.err, cases[i].needle) == NULL)
            printf("#   status %d: %s", r.status, r.err);
    }
    run(&r, false, SERVE_ERROR, "--help", NULL);
    VML_CHECK(r.status == 0 && strstr(r.out, "usage: vmlockctl") != NULL,
              "--help: usage on stdout, exit 0");
}

int main(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! no temp dir\n");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/admin-sock", dir);
    snprintf(out_path, sizeof(out_path), "%s/out", dir);
    snprintf(err_path, sizeof(err_path), "%s/err", dir);
    memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(listener, 8) < 0) {
        printf("Bail out! cannot listen on %s: %s\n", sock_path, strerror(errno));
        return 1;
    }
    unsetenv("VMLOCKD_ADMIN_SOCK");

    test_list();
    test_status();
    test_errors();
    test_usage();

    close(listener);
    unlink(sock_path);
    unlink(out_path);
    unlink(err_path);
    rmdir(dir);
    return vml_test_done();
}
