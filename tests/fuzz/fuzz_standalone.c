/* fuzz_standalone.c: replays fuzz inputs (seed corpus, regression inputs) through a target without libFuzzer, as a TAP test. */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_sandbox.h"
#include "fuzz_target.h"

/*
 *   fuzz-run-TARGET PATH...
 *
 * Every PATH is an input file or a directory of them (its files in name order; names
 * starting with '.' and sidecar files ending in ".todo" are not inputs).  Each input runs
 * in a child process of its own, so one crash fails one TAP point and names its input.
 * INPUT.todo beside an input marks a known, reported, not yet fixed bug: its first line
 * becomes the point's "# TODO" reason, so the suite stays green until the fix lands (then
 * delete the .todo file and the point must pass).
 */

#define INPUT_MAX (64u * 1024 * 1024)
#define INPUT_TIMEOUT_SECS 120

static unsigned int points, failures;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The first line of path (malloc'd, owned by the caller), or NULL when it does not exist. */
static char *read_todo(const char *input)
{
    char path[4096];
    char line[512] = "";
    FILE *f;
    char *nl;

    snprintf(path, sizeof(path), "%s.todo", input);
    f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    if (fgets(line, sizeof(line), f) == NULL)
        snprintf(line, sizeof(line), "known bug (its .todo file is empty)");
    fclose(f);
    if ((nl = strchr(line, '\n')) != NULL)
        *nl = '\0';
    return strdup(line);
}

/* Read a whole file into a buffer of exactly its size (so ASan sees any read past it). */
static int read_input(const char *path, unsigned char **data, size_t *size)
{
    struct stat st;
    unsigned char *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || st.st_size < 0 || (unsigned long long)st.st_size > INPUT_MAX) {
        close(fd);
        return -1;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    while (buf != NULL && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL || got != (size_t)st.st_size) {
        free(buf);
        return -1;
    }
    *data = buf;
    *size = got;
    return 0;
}

static void run_one(const char *path)
{
    char *todo = read_todo(path);
    unsigned char *data = NULL;
    size_t size = 0;
    int status = 0;
    pid_t pid;
    bool ok;

    points++;
    if (read_input(path, &data, &size) < 0) {
        printf("not ok %u - %s: cannot read it: %s\n", points, path, strerror(errno));
        failures++;
        free(todo);
        return;
    }
    fuzz_sandbox_owners_ready();
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        alarm(INPUT_TIMEOUT_SECS);
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        /* exit, not _exit: LeakSanitizer checks at exit, so a leak fails the input too. */
        exit(0);
    }
    free(data);
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && todo == NULL)
        failures++;
    printf("%s %u - %s (%zu bytes)", ok ? "ok" : "not ok", points, path, size);
    if (!ok && pid > 0) {
        if (WIFSIGNALED(status))
            printf(": killed by signal %d", WTERMSIG(status));
        else
            printf(": exit status %d", WEXITSTATUS(status));
    }
    if (todo != NULL)
        printf(" # TODO %s", todo);
    printf("\n");
    free(todo);
}

static void run_path(const char *path)
{
    struct stat st;
    DIR *dir;
    struct dirent *ent;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (stat(path, &st) < 0) {
        points++;
        failures++;
        printf("not ok %u - %s: %s\n", points, path, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_one(path);
        return;
    }
    dir = opendir(path);
    while (dir != NULL && (ent = readdir(dir)) != NULL) {
        char *full;

        if (ent->d_name[0] == '.' || ends_with(ent->d_name, ".todo"))
            continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));
            if (grown == NULL)
                break;
            names = grown;
        }
        if (asprintf(&full, "%s/%s", path, ent->d_name) < 0)
            break;
        names[n++] = full;
    }
    if (dir != NULL)
        closedir(dir);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        run_one(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s INPUT-OR-DIRECTORY...\n", argv[0]);
        return 2;
    }
    setenv("VMLFUZZ_STANDALONE", "1", 1);
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    printf("1..%u\n", points);
    return failures == 0 ? 0 : 1;
}
