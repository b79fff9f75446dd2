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
#include <libgen.h>
#include <sys/socket.h>
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
    if (!strcmp(argv[1], "selfexe")) {
        /* A JVM finding its home: readlink(/proc/self/exe), then HOME/lib/modules beside it;
         * also the magic links opened directly (the tracer records what they point at). */
        char exe[4096] = {0};
        if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) return 1;
        char home[4096];
        snprintf(home, sizeof home, "%s", dirname(dirname(exe)));
        snprintf(p, sizeof p, "%s/lib/modules", home);
        int m = open(p, O_RDONLY);
        int self = open("/proc/self/exe", O_RDONLY);
        snprintf(p, sizeof p, "%s/data", dir);
        int d = open(p, O_RDONLY);
        char q[64];
        snprintf(q, sizeof q, "/proc/self/fd/%d", d);
        int again = open(q, O_RDONLY);
        snprintf(q, sizeof q, "/dev/fd/%d", d);
        struct stat st;
        int st_r = stat(q, &st);
        return (m >= 0 && self >= 0 && d >= 0 && again >= 0 && st_r == 0) ? 0 : 1;
    }
    if (!strcmp(argv[1], "scm")) {
        /* A child opens DIR/sub (O_PATH) and passes the fd over SCM_RIGHTS; the parent opens
         * files relative to the fd it received. */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
        if (fork() == 0) {
            snprintf(p, sizeof p, "%s/sub", dir);
            int fd = open(p, O_PATH | O_DIRECTORY);
            char c = 'x';
            struct iovec iov = {&c, 1};
            char ctl[CMSG_SPACE(sizeof(int))] = {0};
            struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &fd, sizeof fd);
            _exit(sendmsg(sv[1], &msg, 0) == 1 ? 0 : 1);
        }
        char c;
        struct iovec iov = {&c, 1};
        char ctl[CMSG_SPACE(sizeof(int))];
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        if (recvmsg(sv[0], &msg, 0) != 1) return 1;
        int fd;
        memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fd);
        wait(NULL);
        int a = openat(fd, "f", O_RDONLY);
        int b = openat(fd, "missing", O_RDONLY);
        return (a >= 0 && b < 0) ? 0 : 1;
    }
    return 2;
}
