/* vmb_participant.c: a plugin with its daemon, or the floor, as vmlock-bench measures it: images, domains, stand-in QEMUs, one cycle. */
#include "vmb_participant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmb_proc.h"

double vmb_now_us(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e6 + (double)now.tv_nsec / 1e3;
}

int vmb_participant_open(vmb_participant *p, unsigned int index, const char *label,
                         vmb_kind kind, const char *plugin_path, const char *config_path,
                         const char *pidfile, const char *socket_path, const char *stub_path,
                         const char *workdir, vml_error *err)
{
    int len;
    int ret = -1;

    memset(p, 0, sizeof(*p));
    p->index = index;
    p->kind = kind;
    p->plugin_path = plugin_path;
    p->config_path = config_path;
    p->socket_path = socket_path;
    p->stub_path = stub_path;
    snprintf(p->label, sizeof(p->label), "%s", label);
    len = snprintf(p->dir, sizeof(p->dir), "%s/p%u", workdir, index);
    if (len < 0 || (size_t)len >= sizeof(p->dir) - 64) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG, "work directory %s is too long",
                      workdir);
        p->dir[0] = '\0';
        goto out;
    }
    if (mkdir(p->dir, 0700) < 0 && errno != EEXIST) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create %s", p->dir);
        goto out;
    }
    if (kind == VMB_FLOOR) {
        if (vmb_floor_start(p->dir, &p->floor, err) < 0)
            goto out;
        p->daemon_pid = p->floor.pid;
    } else if ((pidfile != NULL && vmb_proc_pidfile(pidfile, &p->daemon_pid, err) < 0) ||
               vmh_plugin_open(plugin_path, config_path, &p->plugin, err) < 0) {
        goto out;
    }
    ret = 0;
 out:
    /* On failure nothing made here survives. */
    if (ret < 0)
        vmb_participant_close(p);
    return ret;
}

int vmb_participant_images(vmb_participant *p, size_t count, vml_error *err)
{
    char **grown;

    if (count <= p->nimages)
        return 0;
    /* Only the array of pointers moves: paths already handed out stay where they are. */
    grown = realloc(p->images, count * sizeof(*grown));
    if (grown == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot name %zu images", count);
        return -1;
    }
    p->images = grown;
    while (p->nimages < count) {
        char *path;
        int fd;

        if (asprintf(&path, "%s/disk-%05zu.img", p->dir, p->nimages) < 0) {
            vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot name an image");
            return -1;
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, 1024 * 1024) < 0) {
            vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create image %s", path);
            if (fd >= 0)
                close(fd);
            free(path);
            return -1;
        }
        close(fd);
        p->images[p->nimages++] = path;
    }
    return 0;
}

int vmb_participant_domain(vmb_participant *p, unsigned int slot, size_t first, size_t ndisks,
                           vmh_domain *dom, vmh_disk *disks, vml_error *err)
{
    unsigned int pid = (unsigned int)getpid();

    if (slot >= VMB_MAX_SLOTS) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG, "at most %d domains",
                      VMB_MAX_SLOTS);
        return -1;
    }
    if (vmb_participant_images(p, first + ndisks, err) < 0)
        return -1;
    memset(dom, 0, sizeof(*dom));
    /* Distinct per participant, slot and run; never 16 equal bytes. */
    memcpy(dom->uuid, "vmbn", 4);
    memcpy(dom->uuid + 4, &pid, sizeof(pid));
    dom->uuid[8] = (unsigned char)p->index;
    memcpy(dom->uuid + 9, &slot, sizeof(slot));
    memcpy(dom->uuid + 13, "\x01\x02\x03", 3);
    snprintf(p->names[slot], sizeof(p->names[slot]), "bench-%u-%u", p->index, slot);
    dom->name = p->names[slot];
    dom->id = slot + 1;
    dom->action = VIR_DOMAIN_LOCK_FAILURE_DEFAULT;
    for (size_t i = 0; i < ndisks; i++) {
        disks[i].path = p->images[first + i];
        disks[i].flags = 0;
    }
    dom->disks = disks;
    dom->ndisks = ndisks;
    if (p->kind == VMB_FLOOR)
        return 0;
    if (p->guests[slot] == 0) {
        vmh_guest_opts opts = { .stub_path = p->stub_path, .ignore_sigterm = false,
                                .log_fd = -1 };

        if (vmh_guest_spawn(p->plugin, dom, &opts, &p->guests[slot], err) < 0)
            return -1;
    }
    dom->pid = p->guests[slot];
    return 0;
}

int vmb_participant_cycle(vmb_participant *p, const vmh_domain *dom, char **state,
                          double *acquire_us, double *release_us, vml_error *err)
{
    char *next = NULL;
    double start;
    double middle;

    if (p->kind == VMB_FLOOR)
        return vmb_floor_cycle(&p->floor, acquire_us, release_us, err);
    start = vmb_now_us();
    if (vmh_acquire(p->plugin, dom, *state, err) < 0)
        return -1;
    middle = vmb_now_us();
    if (vmh_release(p->plugin, dom, &next, err) < 0)
        return -1;
    *release_us = vmb_now_us() - middle;
    *acquire_us = middle - start;
    free(*state);
    *state = next;
    return 0;
}

void vmb_participant_close(vmb_participant *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < VMB_MAX_SLOTS; i++) {
        if (p->guests[i] > 0)
            (void)vmh_guest_kill(p->guests[i], NULL);
        p->guests[i] = 0;
    }
    vmb_floor_stop(&p->floor);
    if (p->floor.lock_path[0] != '\0')
        (void)unlink(p->floor.lock_path);
    vmh_plugin_close(p->plugin);
    p->plugin = NULL;
    for (size_t i = 0; i < p->nimages; i++) {
        (void)unlink(p->images[i]);
        free(p->images[i]);
    }
    free(p->images);
    p->images = NULL;
    p->nimages = 0;
    if (p->dir[0] != '\0')
        (void)rmdir(p->dir);
}
