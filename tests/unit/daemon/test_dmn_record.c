/* test_dmn_record.c: unit tests of the owner record: format, strict parsing of every kind, escaping, bounds, pread/pwrite. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vml_test.h"
#include "dmn_record.h"

static dmn_record sample(bool held)
{
    dmn_record rec;

    memset(&rec, 0, sizeof(rec));
    rec.held = held;
    rec.generation = 7;
    rec.run_start = 6;
    strcpy(rec.host, "hv1.example.com");
    strcpy(rec.boot_id, "0b1f2e3d-4c5b-6a79-8897-a6b5c4d3e2f1");
    rec.daemon_pid = 812;
    rec.owner_pid = 4242;
    strcpy(rec.domain, "vm one\\x\nwith\tcontrol");
    for (int i = 0; i < 16; i++)
        rec.uuid[i] = (unsigned char)(0xc0 + i);
    rec.acquired_usec = 1795000000123456;
    rec.released_usec = held ? 0 : 1795000001000000;
    return rec;
}

static void test_roundtrip(void)
{
    char buf[DMN_RECORD_SIZE + 1];
    dmn_record rec = sample(true), back;
    char why[128];

    dmn_record_format(&rec, buf);
    buf[DMN_RECORD_SIZE] = '\0';
    VML_CHECK(strncmp(buf, "vmlockd-owner-record 1\nstate held\ngeneration 7\nrun_start 6\n"
                           "host hv1.example.com\n", 80) == 0,
              "a held record starts with the header, state, generation and run start");
    VML_CHECK(strstr(buf, "\ndomain vm one\\x5cx\\x0awith\\x09control\n") != NULL,
              "control bytes and backslashes in values are escaped as \\xHH");
    VML_CHECK(strstr(buf, "\nuuid c0c1c2c3-c4c5-c6c7-c8c9-cacbcccdcecf\n") != NULL &&
              strstr(buf, "\nacquired_at 1795000000123456 ") != NULL &&
              strstr(buf, "\nend\n") != NULL, "uuid, time in microseconds, end line");
    VML_CHECK(buf[DMN_RECORD_SIZE - 1] == '\n', "the record is padded to its fixed size");
    VML_CHECK(dmn_record_parse(buf, DMN_RECORD_SIZE, &back, why, sizeof(why)) == DMN_RECORD_VALID &&
              memcmp(&back, &rec, sizeof(rec)) == 0, "a held record parses back exactly");
    rec = sample(false);
    dmn_record_format(&rec, buf);
    buf[DMN_RECORD_SIZE] = '\0';
    VML_CHECK(strstr(buf, "\nstate free\n") != NULL && strstr(buf, "\nlast_domain ") != NULL &&
              strstr(buf, "\nhost ") == NULL && strstr(buf, "\nreleased_at 1795000001000000 ") != NULL,
              "a free record names the last holder with last_ fields and the release time");
    VML_CHECK(dmn_record_parse(buf, DMN_RECORD_SIZE, &back, why, sizeof(why)) == DMN_RECORD_VALID &&
              memcmp(&back, &rec, sizeof(rec)) == 0, "a free record parses back exactly");
}

static void expect_kind(const char *text, dmn_record_kind want, const char *why_part,
                        const char *what)
{
    dmn_record rec;
    char why[128] = "";
    dmn_record_kind got = dmn_record_parse(text, strlen(text), &rec, why, sizeof(why));

    if (!VML_CHECK(got == want && (why_part == NULL || strstr(why, why_part) != NULL), what))
        printf("#   kind %d, why '%s'\n", (int)got, why);
}

static void test_kinds(void)
{
    expect_kind("", DMN_RECORD_EMPTY, NULL, "an empty file: EMPTY (generation 0)");
    expect_kind("QFI\xfb\x00\x00\x00\x03", DMN_RECORD_FOREIGN, "does not start",
                "a file with other content (a disk image): FOREIGN, never written");
    expect_kind("vmlockd-owner-record 2\nstate held\n", DMN_RECORD_FOREIGN, "format version",
                "a newer format version: FOREIGN, never overwritten");
    expect_kind("vmlockd-owner-record 1\nstate held\ngeneration 3\n", DMN_RECORD_DAMAGED,
                "no 'end'", "no end line (a torn write): DAMAGED");
    expect_kind("vmlockd-owner-record 1\nstate busy\ngeneration 3\nend\n", DMN_RECORD_DAMAGED,
                "'state'", "an unknown state: DAMAGED naming the key");
    expect_kind("vmlockd-owner-record 1\nstate held\ngeneration -3\nend\n", DMN_RECORD_DAMAGED,
                "'generation'", "a negative generation: DAMAGED");
    expect_kind("vmlockd-owner-record 1\nstate held\ngeneration 99999999999999999999999\nend\n",
                DMN_RECORD_DAMAGED, "'generation'", "a generation beyond 64 bits: DAMAGED");
    expect_kind("vmlockd-owner-record 1\nstate held\nend\n", DMN_RECORD_DAMAGED, "missing",
                "no generation: DAMAGED");
    expect_kind("vmlockd-owner-record 1\nstate held\ngeneration 1\ndomain a\\x00b\nend\n",
                DMN_RECORD_DAMAGED, "'domain'", "an escaped NUL: DAMAGED");
    expect_kind("vmlockd-owner-record 1\nstate held\ngeneration 1\ndomain a\\x4\nend\n",
                DMN_RECORD_DAMAGED, "'domain'", "a cut escape: DAMAGED");
    expect_kind("vmlockd-owner-record 1\nstate held\ngeneration 1\nuuid 12\nend\n",
                DMN_RECORD_DAMAGED, "'uuid'", "a short uuid: DAMAGED");
    expect_kind("vmlockd-owner-record 1\nstate free\ngeneration 1\nfuture_key x\nend\n",
                DMN_RECORD_VALID, NULL, "an unknown key of version 1 is ignored (forward compatible)");
    {
        char big[600] = "vmlockd-owner-record 1\nstate held\ngeneration 1\ndomain ";
        size_t len = strlen(big);

        memset(big + len, 'x', 300);
        strcpy(big + len + 300, "\nend\n");
        expect_kind(big, DMN_RECORD_DAMAGED, "'domain'",
                    "a value longer than 255 bytes: DAMAGED (bounded)");
    }
}

static void test_io(void)
{
    char path[] = "/tmp/test_dmn_record.XXXXXX";
    int fd = mkstemp(path);
    dmn_record rec = sample(true), back;
    dmn_record_kind kind;
    vml_error err;
    char text[256];

    if (!VML_CHECK(fd >= 0, "a temp file"))
        return;
    VML_CHECK(dmn_record_read(fd, path, false, &kind, &back, &err) == 0 && kind == DMN_RECORD_EMPTY,
              "reading an empty lease file: EMPTY");
    VML_CHECK(dmn_record_write(fd, path, &rec, true, &err) == 0 &&
              lseek(fd, 0, SEEK_END) == DMN_RECORD_SIZE, "a write (with fdatasync) is one fixed-size record");
    VML_CHECK(dmn_record_read(fd, path, true, &kind, &back, &err) == 0 && kind == DMN_RECORD_VALID &&
              back.generation == 7 && back.held, "a cache-dropping read finds it");
    rec.held = false;
    rec.released_usec = 1;
    VML_CHECK(dmn_record_write(fd, path, &rec, false, &err) == 0 &&
              lseek(fd, 0, SEEK_END) == DMN_RECORD_SIZE &&
              dmn_record_read(fd, path, false, &kind, &back, &err) == 0 && !back.held,
              "a rewrite covers the previous record whole");
    rec = sample(true);
    dmn_record_describe(&rec, text, sizeof(text));
    VML_CHECK(strstr(text, "domain 'vm one") != NULL &&
              strstr(text, "(uuid c0c1c2c3-c4c5-c6c7-c8c9-cacbcccdcecf, pid 4242) on host hv1.example.com since 2026-") != NULL,
              "describe names domain, uuid, pid, host and time");
    close(fd);
    VML_CHECK(dmn_record_read(fd, path, false, &kind, &back, &err) < 0 &&
              err.code == VIR_ERR_SYSTEM_ERROR && strstr(err.message, path) != NULL,
              "a read error is a system error naming the file");
    unlink(path);
}

int main(void)
{
    test_roundtrip();
    test_kinds();
    test_io();
    return vml_test_done();
}
