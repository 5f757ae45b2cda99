/* vmb_proc.c: /proc readings for vmlock-bench: a daemon's CPU time and resident memory, the machine's description. */
#include "vmb_proc.h"

#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

int vmb_proc_pidfile(const char *path, pid_t *pid, vml_error *err)
{
    char text[32] = "";
    char *end = NULL;
    FILE *file = fopen(path, "re");
    long value;

    if (file == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot read pid file %s", path);
        return -1;
    }
    if (fgets(text, sizeof(text), file) == NULL)
        text[0] = '\0';
    fclose(file);
    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || (*end != '\0' && *end != '\n') || value <= 0 ||
        value > INT_MAX) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG,
                      "pid file %s does not hold a pid", path);
        return -1;
    }
    if (kill((pid_t)value, 0) < 0 && errno == ESRCH) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG,
                      "pid file %s names process %ld, which is not running", path, value);
        return -1;
    }
    *pid = (pid_t)value;
    return 0;
}

/* Read a small /proc file whole into buf (NUL-terminated). */
static int read_small(const char *path, char *buf, size_t len, vml_error *err)
{
    FILE *file = fopen(path, "re");
    size_t got;

    if (file == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot read %s", path);
        return -1;
    }
    got = fread(buf, 1, len - 1, file);
    buf[got] = '\0';
    fclose(file);
    return 0;
}

int vmb_proc_cpu(pid_t pid, vmb_cpu *out, vml_error *err)
{
    char path[64];
    char text[1024];
    char *fields;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    long ticks = sysconf(_SC_CLK_TCK);
    DIR *tasks;
    struct dirent *task;

    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_small(path, text, sizeof(text), err) < 0)
        return -1;
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    fields = strrchr(text, ')');
    if (fields == NULL ||
        sscanf(fields + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR, "cannot parse %s", path);
        return -1;
    }
    out->stat_us = (double)(utime + stime) * 1e6 / (double)(ticks > 0 ? ticks : 100);

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    tasks = opendir(path);
    if (tasks == NULL)
        return 0;
    out->has_sched = true;
    while ((task = readdir(tasks)) != NULL) {
        char task_path[sizeof(task->d_name) + 64];
        unsigned long long ns = 0;

        if (task->d_name[0] == '.')
            continue;
        snprintf(task_path, sizeof(task_path), "/proc/%d/task/%s/schedstat", (int)pid,
                 task->d_name);
        if (read_small(task_path, text, sizeof(text), NULL) < 0 ||
            sscanf(text, "%llu", &ns) != 1) {
            out->has_sched = false;
            break;
        }
        out->sched_us += (double)ns / 1e3;
    }
    closedir(tasks);
    return 0;
}

double vmb_proc_cpu_delta_us(const vmb_cpu *before, const vmb_cpu *after)
{
    if (before->has_sched && after->has_sched && after->sched_us >= before->sched_us)
        return after->sched_us - before->sched_us;
    return after->stat_us - before->stat_us;
}

int vmb_proc_pin(pid_t pid, int cpu, vml_error *err)
{
    char path[64];
    cpu_set_t set;
    DIR *tasks;
    struct dirent *task;
    int ret = -1;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    tasks = opendir(path);
    if (tasks == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot list the threads of pid %d",
                            (int)pid);
        return -1;
    }
    while ((task = readdir(tasks)) != NULL) {
        char *end;
        long tid = strtol(task->d_name, &end, 10);

        if (task->d_name[0] == '.' || *end != '\0' || tid <= 0)
            continue;
        if (sched_setaffinity((pid_t)tid, sizeof(set), &set) < 0) {
            vml_error_set_errno(err, VIR_FROM_NONE, errno,
                                "cannot pin thread %ld of pid %d to CPU %d", tid, (int)pid, cpu);
            goto out;
        }
    }
    ret = 0;
 out:
    closedir(tasks);
    return ret;
}

int vmb_proc_rss_kib(pid_t pid, long *kib, vml_error *err)
{
    char path[64];
    char text[4096];
    const char *line;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (read_small(path, text, sizeof(text), err) < 0)
        return -1;
    line = strstr(text, "\nVmRSS:");
    if (line == NULL || sscanf(line + 7, "%ld", kib) != 1) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR, "no VmRSS in %s", path);
        return -1;
    }
    return 0;
}

void vmb_proc_machine(char *buf, size_t len)
{
    char text[8192] = "";
    char model[256] = "unknown CPU";
    struct utsname uts;
    const char *line;

    if (read_small("/proc/cpuinfo", text, sizeof(text), NULL) == 0 &&
        (line = strstr(text, "model name")) != NULL) {
        line = strchr(line, ':');
        if (line != NULL)
            sscanf(line + 1, " %255[^\n]", model);
    }
    memset(&uts, 0, sizeof(uts));
    (void)uname(&uts);
    snprintf(buf, len, "%s, %ld CPUs online, Linux %s %s", model,
             sysconf(_SC_NPROCESSORS_ONLN), uts.release, uts.machine);
}
