/* Test program for the tracer: each mode makes file syscalls the tracer must record. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>
#include <linux/openat2.h>

extern char **environ;
static const char *dir;
static int nopen;
static int dfd;

static void *opener(void *arg) {
    long t = (long)arg;
    char p[4096];
    for (int j = 0; j < nopen; j++) {
        snprintf(p, sizeof p, "%s/t%ld_%d", dir, t, j);
        int fd = open(p, O_RDONLY);
        if (fd >= 0) close(fd);
    }
    return NULL;
}

static void *at_opener(void *arg) {
    (void)arg;
    int fd = openat(dfd, "f", O_RDONLY);
    if (fd >= 0) close(fd);
    return NULL;
}

static void *execer(void *arg) {
    char *argv[] = {(char *)arg, NULL};
    execve((char *)arg, argv, environ);
    _exit(126);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    dir = argv[2];
    char p[4096];
    if (!strcmp(argv[1], "raw")) {
        struct open_how how = {.flags = O_RDONLY};
        snprintf(p, sizeof p, "%s/a", dir);
        long fd = syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how);
        struct statx sx;
        snprintf(p, sizeof p, "%s/missing", dir);
        long r1 = syscall(SYS_statx, AT_FDCWD, p, 0, STATX_BASIC_STATS, &sx);
        snprintf(p, sizeof p, "%s/a", dir);
        long r2 = syscall(SYS_faccessat2, AT_FDCWD, p, R_OK, 0);
        char params[120] = {0};
        long r3 = syscall(SYS_io_uring_setup, 1, params);
        printf("openat2=%ld statx=%ld faccessat2=%ld io_uring=%ld errno=%d\n", fd >= 0 ? 0 : -1, r1, r2, r3, errno);
        return 0;
    }
    if (!strcmp(argv[1], "dirfd")) {
        snprintf(p, sizeof p, "%s/sub", dir);
        dfd = open(p, O_PATH | O_DIRECTORY);
        pthread_t th;
        pthread_create(&th, NULL, at_opener, NULL);
        pthread_join(th, NULL);
        struct stat st;
        fstatat(dfd, "", &st, AT_EMPTY_PATH);
        fchdir(dfd);
        int fd = open("g", O_RDONLY);
        snprintf(p, sizeof p, "/proc/self/fd/%d/f", dfd);
        fd = open(p, O_RDONLY);
        return fd >= 0 ? 0 : 1;
    }
    if (!strcmp(argv[1], "threads")) {
        int n = atoi(argv[3]);
        nopen = atoi(argv[4]);
        pthread_t th[256];
        for (long t = 0; t < n; t++) pthread_create(&th[t], NULL, opener, (void *)t);
        for (long t = 0; t < n; t++) pthread_join(th[t], NULL);
        return 0;
    }
    if (!strcmp(argv[1], "execthread")) {
        pthread_t th;
        pthread_create(&th, NULL, execer, argv[3]);
        pause();
    }
    if (!strcmp(argv[1], "daemon")) {
        /* Double fork: the parent exits at once, the grandchild keeps opening files. */
        if (fork() == 0) {
            setsid();
            if (fork() == 0) {
                usleep(200000);
                snprintf(p, sizeof p, "%s/late", dir);
                int fd = open(p, O_RDONLY);
                if (fd >= 0) close(fd);
                _exit(0);
            }
            _exit(0);
        }
        /* posix_spawn: vfork/clone3 under glibc. */
        pid_t pid;
        char *av[] = {"true", NULL};
        posix_spawnp(&pid, "true", NULL, NULL, av, environ);
        waitpid(pid, NULL, 0);
        return 0;
    }
    if (!strcmp(argv[1], "change")) {
        snprintf(p, sizeof p, "%s/newdir", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/newdir/created", dir);
        int fd = open(p, O_CREAT | O_WRONLY, 0644);
        close(fd);
        char q[4096];
        snprintf(q, sizeof q, "%s/newdir/renamed", dir);
        rename(p, q);
        unlink(q);
        snprintf(p, sizeof p, "%s/caf\xe9", dir);
        fd = open(p, O_RDONLY);
        return 0;
    }
    return 2;
}
