/* Test program for tests/pack.rs: prints what a packed binary must preserve. */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;
extern void _start(void);
#ifdef WITH_LIB
int probelib_answer(void);
#endif

extern const Elf64_Ehdr __ehdr_start; /* linker-provided: where our ELF header really is */

static int in_image(unsigned long addr) {
    /* AT_PHDR/AT_PHNUM must describe the running program: they must point at
     * our own program headers, and a PT_LOAD (relocated by the load bias) must
     * contain `addr`. -1 = AT_PHDR/AT_PHNUM wrong, 0 = addr not covered. */
    const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long n = getauxval(AT_PHNUM), bias = 0, i;
    if ((unsigned long)ph != (unsigned long)&__ehdr_start + __ehdr_start.e_phoff || n != __ehdr_start.e_phnum)
        return -1;
    for (i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) bias = (unsigned long)&__ehdr_start - ph[i].p_vaddr;
    for (i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD && addr >= bias + ph[i].p_vaddr &&
            addr < bias + ph[i].p_vaddr + ph[i].p_memsz)
            return 1;
    return 0;
}

int main(int argc, char **argv) {
    char buf[4096];
    ssize_t n;
    int i, envc = 0;
    printf("argc=%d\n", argc);
    for (i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; *e; e++) envc++;
    printf("envc=%d\n", envc);
    printf("PROBE_VAR=%s\n", getenv("PROBE_VAR") ? getenv("PROBE_VAR") : "(unset)");
    n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    printf("exe=%s\n", buf);
    printf("execfn=%s\n", (const char *)getauxval(AT_EXECFN));
    printf("pagesz=%lu secure=%lu uid=%lu\n", getauxval(AT_PAGESZ), getauxval(AT_SECURE), getauxval(AT_UID));
    printf("random_set=%d sysinfo_set=%d\n", getauxval(AT_RANDOM) != 0, getauxval(AT_SYSINFO_EHDR) != 0);
    printf("entry_is_start=%d\n", getauxval(AT_ENTRY) == (unsigned long)&_start);
    printf("base_set=%d\n", getauxval(AT_BASE) != 0);
    printf("phdr_covers_main=%d\n", in_image((unsigned long)&main));
    /* The stub decodes on helper threads: they must all be gone by now. */
    FILE *st = fopen("/proc/self/status", "r");
    while (st && fgets(buf, sizeof buf, st))
        if (!strncmp(buf, "Threads:", 8)) printf("threads=%d\n", atoi(buf + 8));
    if (st) fclose(st);
    FILE *f = fopen("/proc/self/comm", "r");
    if (f && fgets(buf, sizeof buf, f)) printf("comm=%s", buf);
    if (f) fclose(f);
    char *p = malloc(1 << 20); /* heap works (brk or mmap) */
    memset(p, 1, 1 << 20);
    printf("malloc_ok=%d\n", p[12345] == 1);
    free(p);
#ifdef WITH_LIB
    printf("lib=%d\n", probelib_answer());
#endif
    fflush(stdout);
    if (argc > 2 && !strcmp(argv[1], "exit")) return atoi(argv[2]);
    if (argc > 2 && !strcmp(argv[1], "kill")) { raise(atoi(argv[2])); return 99; }
    if (argc > 1 && !strcmp(argv[1], "reexec") && !getenv("PROBE_DEPTH")) {
        setenv("PROBE_DEPTH", "1", 1);
        printf("reexec:\n");
        fflush(stdout);
        execv("/proc/self/exe", argv);
        perror("execv /proc/self/exe");
        return 98;
    }
    if (getenv("PROBE_DEPTH")) printf("depth=%s\n", getenv("PROBE_DEPTH"));
    return 0;
}
