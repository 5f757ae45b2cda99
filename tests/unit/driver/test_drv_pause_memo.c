/* test_drv_pause_memo.c: the per-domain pause-state memory survives libvirt's double release and is bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_pause_memo.h"
#include "vml_test.h"

static void make_uuid(unsigned char uuid[16], unsigned int n)
{
    memset(uuid, 0, 16);
    memcpy(uuid, &n, sizeof(n));
    uuid[15] = 0x5a;
}

int main(void)
{
    unsigned char a[16], b[16];
    char *got;

    make_uuid(a, 1);
    make_uuid(b, 2);
    VML_CHECK(drv_pause_memo_lookup(a) == NULL, "nothing remembered at first");

    drv_pause_memo_store(a, "vmlockd:1:k=3");
    got = drv_pause_memo_lookup(a);
    VML_CHECK_STR(got, "vmlockd:1:k=3", "the first release's state is handed back");
    free(got);
    VML_CHECK(drv_pause_memo_lookup(b) == NULL, "another domain's state is separate");

    drv_pause_memo_store(a, "vmlockd:1:k=4");
    got = drv_pause_memo_lookup(a);
    VML_CHECK_STR(got, "vmlockd:1:k=4", "a later pause replaces the state");
    free(got);

    drv_pause_memo_forget(a);
    VML_CHECK(drv_pause_memo_lookup(a) == NULL, "forgotten once the domain holds its leases again");

    /* Bounded: storing more domains than slots forgets the oldest, never fails. */
    for (unsigned int i = 100; i < 100 + 300; i++) {
        unsigned char u[16];
        char text[32];

        make_uuid(u, i);
        snprintf(text, sizeof(text), "vmlockd:1:k=%u", i);
        drv_pause_memo_store(u, text);
    }
    {
        unsigned char oldest[16], newest[16];

        make_uuid(oldest, 100);
        make_uuid(newest, 399);
        got = drv_pause_memo_lookup(oldest);
        VML_CHECK(got == NULL, "the oldest of 300 domains was forgotten (256 slots)");
        free(got);
        got = drv_pause_memo_lookup(newest);
        VML_CHECK_STR(got, "vmlockd:1:k=399", "the newest is remembered");
        free(got);
    }
    for (unsigned int i = 100; i < 400; i++) {
        unsigned char u[16];

        make_uuid(u, i);
        drv_pause_memo_forget(u);
    }
    return vml_test_done();
}
