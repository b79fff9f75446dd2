/* An i386 program without libc (no 32-bit libc is needed to build it: gcc -m32 -nostdlib):
 * int 0x80 file syscalls on argv[1] (exists) and argv[2] (missing). Exit 0 when the calls
 * answered as the kernel would untraced; a tracer that kills foreign-arch calls gives SIGSYS. */
__asm__(".globl _start\n_start:\n push %esp\n call cmain\n");

static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}

enum { SYS_exit = 1, SYS_open = 5, SYS_access = 33, SYS_stat64 = 195, SYS_openat = 295, AT_FDCWD = -100 };

void cmain(long *sp) {
    char **argv = (char **)(sp + 1);
    char st[128];
    int ok = sys3(SYS_open, (long)argv[1], 0, 0) >= 0
        && sys3(SYS_stat64, (long)argv[1], (long)st, 0) == 0
        && sys3(SYS_access, (long)argv[2], 0, 0) == -2
        && sys3(SYS_openat, AT_FDCWD, (long)argv[2], 0) == -2;
    sys3(SYS_exit, ok ? 0 : 3, 0, 0);
    for (;;) {
    }
}
