/* TEST-ONLY: run a command with some system calls refused, the way a
 * container's seccomp filter refuses what it does not know (systemd-nspawn:
 * Landlock gets ENOSYS).  tests/layers.bats puts it in front of the real
 * pyexec to make one sandbox layer impossible at a time, with no test-only
 * code path in pyexec itself.
 *
 *   deny-syscall RULE... -- COMMAND [ARG...]
 *   RULE  = SYSCALL:ERRNO[:COND]...   ERRNO = ENOSYS | EPERM | EACCES | a number
 *   COND  = N=V (argument N equals V), N!=V, N&M (all bits of M set in N)
 * e.g.  deny-syscall landlock_create_ruleset:ENOSYS -- pyexec
 *       deny-syscall unshare:EPERM:0&0x40000000 -- pyexec     (CLONE_NEWNET) */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_errno(const char *s)
{
    if (strcmp(s, "ENOSYS") == 0)
        return ENOSYS;
    if (strcmp(s, "EPERM") == 0)
        return EPERM;
    if (strcmp(s, "EACCES") == 0)
        return EACCES;
    return atoi(s);
}

static int parse_cond(const char *s, struct scmp_arg_cmp *c)
{
    char *end;
    unsigned arg = (unsigned)strtoul(s, &end, 10);
    if (end == s || arg > 5)
        return -1;
    enum scmp_compare op;
    if (strncmp(end, "!=", 2) == 0) {
        op = SCMP_CMP_NE;
        end += 2;
    } else if (*end == '=' || *end == '&') {
        op = *end == '=' ? SCMP_CMP_EQ : SCMP_CMP_MASKED_EQ;
        end++;
    } else {
        return -1;
    }
    scmp_datum_t v = strtoull(end, NULL, 0);
    *c = op == SCMP_CMP_MASKED_EQ ? SCMP_CMP(arg, op, v, v) : SCMP_CMP(arg, op, v);
    return 0;
}

static int add_rule(scmp_filter_ctx ctx, char *rule)
{
    char *name = strtok(rule, ":"), *err = strtok(NULL, ":"), *cond;
    struct scmp_arg_cmp cmp[6];
    unsigned n = 0;
    int nr = name ? seccomp_syscall_resolve_name(name) : __NR_SCMP_ERROR;
    if (nr == __NR_SCMP_ERROR || !err)
        return -1;
    while ((cond = strtok(NULL, ":")) && n < 6)
        if (parse_cond(cond, &cmp[n++]) < 0)
            return -1;
    return seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO((unsigned)parse_errno(err)), nr, n, cmp);
}

int main(int argc, char **argv)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int i = 1;
    /* Root may install a filter without no_new_privs: leave that to pyexec. */
    if (!ctx || (geteuid() == 0 && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) != 0))
        return 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (add_rule(ctx, argv[i]) < 0) {
            fprintf(stderr, "deny-syscall: bad rule %s\n", argv[i]);
            return 2;
        }
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: deny-syscall SYSCALL:ERRNO[:COND]... -- COMMAND [ARG...]\n");
        return 2;
    }
    int rc = seccomp_load(ctx);
    if (rc < 0) {
        fprintf(stderr, "deny-syscall: seccomp_load: %s\n", strerror(-rc));
        return 2;
    }
    execv(argv[i + 1], argv + i + 1);
    fprintf(stderr, "deny-syscall: %s: %s\n", argv[i + 1], strerror(errno));
    return 127;
}
