/* vmb_proc.h: what vmlock-bench reads from /proc about a daemon (CPU time, resident memory) and about the machine. */
#ifndef VMB_PROC_H
#define VMB_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vml_error.h"

/* The pid written in a pid file (decimal, as vmlockd and virtlockd write it). */
int vmb_proc_pidfile(const char *path, pid_t *pid, vml_error *err);

/*
 * CPU time a process has used so far: utime + stime from /proc/PID/stat (all its threads;
 * clock-tick resolution, converted to microseconds), and, where the kernel keeps it, the sum
 * of sum_exec_runtime over /proc/PID/task/ (nanoseconds).
 */
typedef struct vmb_cpu {
    double stat_us;
    double sched_us;
    bool has_sched;
} vmb_cpu;

int vmb_proc_cpu(pid_t pid, vmb_cpu *out, vml_error *err);

/* CPU microseconds used between two readings: schedstat when both have it, else stat. */
double vmb_proc_cpu_delta_us(const vmb_cpu *before, const vmb_cpu *after);

/* Pin every thread of process pid to cpu (sched_setaffinity); -1 with err naming the
 * thread and the reason. */
int vmb_proc_pin(pid_t pid, int cpu, vml_error *err);

/* VmRSS of a process in KiB. */
int vmb_proc_rss_kib(pid_t pid, long *kib, vml_error *err);

/* One line describing this machine: CPU model, CPUs online, kernel (for reports). */
void vmb_proc_machine(char *buf, size_t len);

#endif
