/* Signal handlers, counted per thread (under netloom run: NETLOOM_ENGINE set).
 *
 * An engine's wait does not always learn that a signal handler ran during it: the offload
 * engine's epoll_wait is often one io_uring_enter that both submits and waits, which returns the
 * number of entries it submitted rather than EINTR, and the stack engine's sleep on a port can
 * time out as the signal comes. A program that checks a flag its handler set only after EINTR
 * (nginx's single process, a select loop) would sleep on until an event or its timeout. So each
 * handler the program installs runs through a trampoline that first counts it on the thread it
 * runs on; an engine reads the count when a call begins and after its waits (nl_host.handled),
 * and returns EINTR when it moved. A second count leaves out the handlers installed with
 * SA_RESTART, after which the kernel restarts a blocking recv, send, accept or connect (one
 * without a timeout) instead of returning EINTR: the engines do too.
 *
 * What the program sees is unchanged: sigaction and signal report its own handler and flags back,
 * SIG_DFL and SIG_IGN pass untouched, and SA_RESETHAND, SA_NODEFER, SA_RESTART and the handler's
 * mask are the kernel's as before. The runtime the engine loads (nl_depth set) installs its own
 * handlers directly. Not wrapped: handlers installed by the raw rt_sigaction system call or by
 * sigset(); a wait they interrupt still ends with EINTR, as it did before this file. */
#include "netloom.h"
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NL_NSIG 65

/* Per signal, while the trampoline is installed for it: the program's handler (0 otherwise), and
 * whether the program asked for siginfo (SA_SIGINFO) and for SA_RESTART. The trampoline calls
 * every handler with three arguments: a one-argument handler ignores the other two, which the
 * Linux ABIs (x86-64, arm64, riscv) pass in registers the callee may ignore. */
static uintptr_t handlers[NL_NSIG];
static int siginfo[NL_NSIG], restarts[NL_NSIG];
/* siginterrupt(sig, 1) was called: signal() then installs without SA_RESTART, as glibc's does. */
static int interrupts[NL_NSIG];
static __thread unsigned long handled __attribute__((tls_model("initial-exec")));
static __thread unsigned long interrupting __attribute__((tls_model("initial-exec")));
/* Inside a program handler: its sigaction calls are the program's even while the thread is in
 * an engine call (nl_depth set), where the engine's runtime would otherwise go straight to libc.
 * (A handler that leaves by siglongjmp leaves this raised: its later calls stay wrapped.) */
static __thread int in_handler __attribute__((tls_model("initial-exec")));
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static int wrapping_on;

/* Resolved at load, not in the first call (which could come from a handler). */
__attribute__((constructor)) static void signals_init(void)
{
    real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
    const char *engine = getenv("NETLOOM_ENGINE");
    wrapping_on = engine && *engine;
}

static int wrapping(void)
{
    if (!real_sigaction) signals_init(); /* called from another library's constructor, before ours */
    return wrapping_on;
}

unsigned long nl_handled(int all) { return all ? handled : interrupting; }

static void trampoline(int sig, siginfo_t *info, void *context)
{
    handled++; /* first: a handler that leaves by siglongjmp still counts */
    if (!__atomic_load_n(&restarts[sig], __ATOMIC_RELAXED)) interrupting++;
    void (*h)(int, siginfo_t *, void *) = (void (*)(int, siginfo_t *, void *))__atomic_load_n(&handlers[sig], __ATOMIC_ACQUIRE);
    if (!h) return;
    in_handler++;
    h(sig, info, context);
    in_handler--;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!wrapping() || (nl_depth && !in_handler) || sig <= 0 || sig >= NL_NSIG || (act && act->sa_sigaction == trampoline))
        return real_sigaction(sig, act, old);
    uintptr_t was = __atomic_load_n(&handlers[sig], __ATOMIC_ACQUIRE);
    int was_siginfo = siginfo[sig], was_restart = __atomic_load_n(&restarts[sig], __ATOMIC_RELAXED);
    struct sigaction mine, prev;
    const struct sigaction *give = act;
    if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
        __atomic_store_n(&restarts[sig], (act->sa_flags & SA_RESTART) != 0, __ATOMIC_RELAXED);
        siginfo[sig] = (act->sa_flags & SA_SIGINFO) != 0;
        __atomic_store_n(&handlers[sig], (act->sa_flags & SA_SIGINFO) ? (uintptr_t)act->sa_sigaction : (uintptr_t)act->sa_handler, __ATOMIC_RELEASE);
        mine = *act;
        mine.sa_sigaction = trampoline;
        mine.sa_flags |= SA_SIGINFO;
        give = &mine;
    }
    int r = real_sigaction(sig, give, &prev);
    if (r != 0) {
        __atomic_store_n(&restarts[sig], was_restart, __ATOMIC_RELAXED);
        siginfo[sig] = was_siginfo;
        __atomic_store_n(&handlers[sig], was, __ATOMIC_RELEASE);
        return r;
    }
    if (old) {
        *old = prev;
        if (prev.sa_sigaction == trampoline) { /* the program's own handler, as it gave it */
            if (was_siginfo) old->sa_sigaction = (void (*)(int, siginfo_t *, void *))was;
            else { old->sa_handler = (void (*)(int))was; old->sa_flags &= ~SA_SIGINFO; }
        }
    }
    return 0;
}

/* glibc's siginterrupt changes the flags inside libc, past this library: the same here, through
 * the wrapper, so the count of handlers without SA_RESTART stays true. */
int siginterrupt(int sig, int flag)
{
    static int (*real)(int, int);
    if (!wrapping()) {
        if (!real) real = (int (*)(int, int))dlsym(RTLD_NEXT, "siginterrupt");
        return real(sig, flag);
    }
    struct sigaction sa;
    if (sig <= 0 || sig >= NL_NSIG) { errno = EINVAL; return -1; }
    if (sigaction(sig, NULL, &sa) < 0) return -1;
    __atomic_store_n(&interrupts[sig], flag != 0, __ATOMIC_RELAXED);
    if (flag) sa.sa_flags &= ~SA_RESTART;
    else sa.sa_flags |= SA_RESTART;
    return sigaction(sig, &sa, NULL);
}

/* signal() in glibc calls sigaction inside libc, past this library, so it is wrapped too, with
 * the flags each variant gives: BSD semantics (signal, bsd_signal), System V's (sysv_signal, and
 * signal under _XOPEN_SOURCE, which headers turn into __sysv_signal). */
static sighandler_t install(int sig, sighandler_t h, int flags, int block_self)
{
    struct sigaction act, old;
    if (h == SIG_ERR || sig <= 0 || sig >= NL_NSIG) { errno = EINVAL; return SIG_ERR; }
    if (flags == SA_RESTART && __atomic_load_n(&interrupts[sig], __ATOMIC_RELAXED)) flags = 0; /* BSD signal after siginterrupt(sig, 1) */
    memset(&act, 0, sizeof act);
    act.sa_handler = h;
    sigemptyset(&act.sa_mask);
    if (block_self) sigaddset(&act.sa_mask, sig);
    act.sa_flags = flags;
    if (sigaction(sig, &act, &old) < 0) return SIG_ERR;
    return old.sa_handler;
}

/* Outside netloom run (no engine named), libc's own. */
#define WRAP_SIGNAL(name, flags, block_self)                                                  \
    sighandler_t name(int sig, sighandler_t h)                                                \
    {                                                                                         \
        static sighandler_t (*real)(int, sighandler_t);                                       \
        if (wrapping()) return install(sig, h, flags, block_self);                            \
        if (!real) real = (sighandler_t (*)(int, sighandler_t))dlsym(RTLD_NEXT, #name);       \
        return real(sig, h);                                                                  \
    }
WRAP_SIGNAL(signal, SA_RESTART, 1)
WRAP_SIGNAL(bsd_signal, SA_RESTART, 1)
WRAP_SIGNAL(sysv_signal, SA_RESETHAND | SA_NODEFER, 0)
WRAP_SIGNAL(__sysv_signal, SA_RESETHAND | SA_NODEFER, 0)
