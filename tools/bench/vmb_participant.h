/* vmb_participant.h: one thing vmlock-bench measures: a plugin with its daemon (loaded like libvirt), or the floor daemon; its images, domains and stand-in QEMUs. */
#ifndef VMB_PARTICIPANT_H
#define VMB_PARTICIPANT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vmb_floor.h"
#include "vmh_plughost.h"
#include "vml_error.h"

#define VMB_MAX_SLOTS 256           /* domains (and stand-in QEMUs) per participant */

typedef enum {
    VMB_PLUGIN,
    VMB_FLOOR,
} vmb_kind;

/*
 * A participant owns its directory of images (so two plugins never lock each other's
 * files), its plugin handle or floor daemon, and one registered stand-in QEMU per domain
 * slot (libvirt's owner model: libvirtd acquires on behalf of a registered QEMU).  Strings
 * given to vmb_participant_open are borrowed for the participant's life.
 */
typedef struct vmb_participant {
    char label[64];
    vmb_kind kind;
    unsigned int index;             /* distinguishes UUIDs of different participants */
    const char *plugin_path;
    const char *config_path;
    const char *socket_path;        /* the daemon's socket (fill mode), or NULL */
    const char *stub_path;
    vmh_plugin *plugin;
    vmb_floor floor;
    pid_t daemon_pid;               /* 0 when no pid file was given */
    char dir[PATH_MAX];
    char **images;                  /* each malloc'd: domains keep pointers to them */
    size_t nimages;
    pid_t guests[VMB_MAX_SLOTS];    /* the stand-in QEMU of each slot, 0 = none yet */
    char names[VMB_MAX_SLOTS][32];  /* the domain name of each slot */
} vmb_participant;

/*
 * Load the plugin (drvInit with config_path) or start the floor daemon, and make the
 * participant's directory under workdir.  pidfile (may be NULL) names the daemon's pid file
 * (the floor's pid is known).  On failure everything made is undone.
 */
int vmb_participant_open(vmb_participant *p, unsigned int index, const char *label,
                         vmb_kind kind, const char *plugin_path, const char *config_path,
                         const char *pidfile, const char *socket_path, const char *stub_path,
                         const char *workdir, vml_error *err);

/* Make sure images 0..count-1 exist (1 MiB sparse files). */
int vmb_participant_images(vmb_participant *p, size_t count, vml_error *err);

/*
 * The domain of slot: name, UUID, id, and disks images[first .. first+ndisks) (exclusive),
 * written to dom and disks (which must hold ndisks); dom borrows from p and disks.  The
 * slot's stand-in QEMU is spawned (start hook) the first time, so the domain has a live,
 * registered pid.
 */
int vmb_participant_domain(vmb_participant *p, unsigned int slot, size_t first, size_t ndisks,
                           vmh_domain *dom, vmh_disk *disks, vml_error *err);

/*
 * One cycle as libvirt makes it for a domain (resume then pause: new + add disks +
 * acquire(state) + free, new + add disks + release(&state) + free), or a floor lock/unlock.
 * *state is the lock state libvirt keeps between them (priv->lockState): NULL at first, then
 * what the last pause returned; it is the caller's (free() it; may be NULL).  *acquire_us and
 * *release_us are the two halves.
 */
int vmb_participant_cycle(vmb_participant *p, const vmh_domain *dom, char **state,
                          double *acquire_us, double *release_us, vml_error *err);

/* Kill the stand-in QEMUs, stop the floor, close the plugin, remove the images. */
void vmb_participant_close(vmb_participant *p);

/* CLOCK_MONOTONIC in microseconds. */
double vmb_now_us(void);

#endif
