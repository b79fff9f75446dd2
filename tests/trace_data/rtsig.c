/* A real-time signal delivered to a traced thread must reach its handler (Go's per-thread
 * setuid and glibc's setxid use signals 32-34); then a file is opened. Exit 0 only if both. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on(int s) { (void)s; got++; }

static void *worker(void *a) {
    (void)a;
    for (int i = 0; i < 200 && got < 2; i++) usleep(5000);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGRTMIN + 2, on);
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    pthread_kill(t, SIGRTMIN + 2);
    raise(SIGRTMIN + 2);
    pthread_join(t, 0);
    if (got != 2) return 3;
    int fd = open(argc > 1 ? argv[1] : "/", O_RDONLY);
    return fd < 0 ? 4 : 0;
}
