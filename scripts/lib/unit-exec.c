// unit-exec: runs a command under two of the locks of deploy/systemd's units, the way systemd sets them up, for
// machines where systemd is not PID 1 (scripts/deb-check.sh). Both are inherited across execve.
// RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX: socket() of any other family fails with EAFNOSUPPORT, as with
// systemd's seccomp filter for it.
// SystemCallFilter=~@resources, for the one call of that group the service makes: setpriority fails with EPERM
// (libdispatch's worker threads set their nice value with it, and carry on when refused).
// MemoryDenyWriteExecute=yes, twice:
//   - the seccomp filter of systemd 252 (src/shared/seccomp-util.c, seccomp_memory_deny_write_execute): mmap with
//     PROT_WRITE and PROT_EXEC together, mprotect and pkey_mprotect adding PROT_EXEC, and shmat with SHM_EXEC fail
//     with EPERM;
//   - the kernel's own prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) (Linux 6.3 and later, used by newer systemd),
//     skipped with a note when the kernel has none.
// Usage: unit-exec COMMAND [ARGUMENTS…]. Build: gcc -O2 -o unit-exec unit-exec.c
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif
#ifndef SHM_EXEC
#define SHM_EXEC 0100000
#endif

#define ARG2_LOW offsetof(struct seccomp_data, args[2])
// Fails `nr` with EPERM when (args[2] & mask) == mask; the next block follows when nr differs.
#define DENY_WHEN(nr, mask)                                        \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 5),               \
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG2_LOW),                  \
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (mask)),                   \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (mask), 0, 1),             \
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)), \
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: unit-exec COMMAND [ARGUMENTS...]\n");
        return 2;
    }
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        DENY_WHEN(SYS_mmap, PROT_WRITE | PROT_EXEC),
        DENY_WHEN(SYS_mprotect, PROT_EXEC),
        DENY_WHEN(SYS_pkey_mprotect, PROT_EXEC),
        DENY_WHEN(SYS_shmat, SHM_EXEC),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setpriority, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        // socket(family, …): only the three families pass.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        perror("unit-exec: PR_SET_NO_NEW_PRIVS");
        return 1;
    }
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        perror("unit-exec: PR_SET_SECCOMP");
        return 1;
    }
    if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0) {
        fprintf(stderr, "unit-exec: no PR_SET_MDWE in this kernel (%s); the seccomp filter alone applies\n",
            strerror(errno));
    }
    // The locks hold from here on: show it before handing over, so a check can see the filter bites.
    void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe != MAP_FAILED) {
        fprintf(stderr, "unit-exec: a writable and executable mapping was still allowed\n");
        return 1;
    }
    if (socket(AF_NETLINK, SOCK_RAW, 0) >= 0 || errno != EAFNOSUPPORT) {
        fprintf(stderr, "unit-exec: a netlink socket was still allowed\n");
        return 1;
    }
    execvp(argv[1], argv + 1);
    perror("unit-exec: execvp");
    return 127;
}
