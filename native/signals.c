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
 * handlers directly. Not wrapped: handlers installed by the raw rt_sigaction system call. */
#include "netloom.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#define NL_NSIG 65

/* Per signal: the program's handler, with bit 0 set when it takes siginfo (SA_SIGINFO); 0 when
 * the trampoline is not installed for it. One word, so the trampoline never reads half of it. */
static uintptr_t handlers[NL_NSIG];
static int restarts[NL_NSIG]; /* the handler was installed with SA_RESTART */
static __thread unsigned long handled __attribute__((tls_model("initial-exec")));
static __thread unsigned long interrupting __attribute__((tls_model("initial-exec")));
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

static int wrapping(void)
{
    static int on = -1;
    if (on < 0) {
        const char *engine = getenv("NETLOOM_ENGINE");
        on = engine && *engine;
    }
    return on;
}

unsigned long nl_handled(int all) { return all ? handled : interrupting; }

static void trampoline(int sig, siginfo_t *info, void *context)
{
    handled++; /* first: a handler that leaves by siglongjmp still counts */
    if (!__atomic_load_n(&restarts[sig], __ATOMIC_RELAXED)) interrupting++;
    uintptr_t h = __atomic_load_n(&handlers[sig], __ATOMIC_ACQUIRE);
    if (h & 1) ((void (*)(int, siginfo_t *, void *))(h & ~(uintptr_t)1))(sig, info, context);
    else if (h) ((void (*)(int))h)(sig);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!real_sigaction) real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
    if (!wrapping() || nl_depth || sig <= 0 || sig >= NL_NSIG) return real_sigaction(sig, act, old);
    uintptr_t was = __atomic_load_n(&handlers[sig], __ATOMIC_ACQUIRE);
    int restarted = __atomic_load_n(&restarts[sig], __ATOMIC_RELAXED);
    struct sigaction mine, prev;
    const struct sigaction *give = act;
    if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
        uintptr_t h = (act->sa_flags & SA_SIGINFO) ? (uintptr_t)act->sa_sigaction | 1 : (uintptr_t)act->sa_handler;
        __atomic_store_n(&restarts[sig], (act->sa_flags & SA_RESTART) != 0, __ATOMIC_RELAXED);
        __atomic_store_n(&handlers[sig], h, __ATOMIC_RELEASE);
        mine = *act;
        mine.sa_sigaction = trampoline;
        mine.sa_flags |= SA_SIGINFO;
        give = &mine;
    }
    int r = real_sigaction(sig, give, &prev);
    if (r != 0) {
        __atomic_store_n(&restarts[sig], restarted, __ATOMIC_RELAXED);
        __atomic_store_n(&handlers[sig], was, __ATOMIC_RELEASE);
        return r;
    }
    if (old) {
        *old = prev;
        if (prev.sa_sigaction == trampoline) { /* the program's own handler, as it gave it */
            if (was & 1) old->sa_sigaction = (void (*)(int, siginfo_t *, void *))(was & ~(uintptr_t)1);
            else { old->sa_handler = (void (*)(int))was; old->sa_flags &= ~SA_SIGINFO; }
        }
    }
    return 0;
}

/* signal() in glibc calls sigaction inside libc, past this library, so it is wrapped too, with
 * the flags each variant gives: BSD semantics (signal, bsd_signal), System V's (sysv_signal, and
 * signal under _XOPEN_SOURCE, which headers turn into __sysv_signal). */
static sighandler_t install(int sig, sighandler_t h, int flags, int block_self)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = h;
    sigemptyset(&act.sa_mask);
    if (block_self && sig > 0 && sig < NL_NSIG) sigaddset(&act.sa_mask, sig);
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
