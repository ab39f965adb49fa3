/* Loading the C# engine (a NativeAOT shared library named by NETLOOM_ENGINE) on the first
 * AF_INET (or AF_INET6) socket, and the small helpers every wrapper shares. A program that never opens an
 * AF_INET or AF_INET6 socket never loads the runtime. A child forked after the engine started never enters
 * it: the runtime's threads did not survive the fork. */
#include "netloom.h"
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct nl_engine *nl_engine;
int nl_in_child;
__thread int nl_depth;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

void nl_warn(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "netloom: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (!nl_real.write) nl_real_init();
    (void)!nl_real.write(2, line, (size_t)n);
}

static void host_warn(const char *line) { nl_warn("%s", line); }

static const struct nl_host host = {
    .version = NL_ENGINE_VERSION,
    .size = sizeof(struct nl_host),
    .mark = nl_mark,
    .mark_epoll = nl_mark_epoll,
    .warn = host_warn,
    .epoll_kernel = nl_epoll_kernel,
    .handled = nl_handled,
    .wake_consumed = nl_wake_consumed,
};

/* At exit the engine closes what the program left open and releases its port (a shm port's
 * file, a capture's last frames); a forked child's exit leaves its parent's engine alone. */
static void at_exit(void)
{
    if (nl_in_child || !nl_engine) return;
    nl_depth++;
    nl_engine->at_exit();
    nl_depth--;
}

static void load(void)
{
    const char *path = getenv("NETLOOM_ENGINE");
    if (!path || !*path) return; /* preloaded without an engine: everything stays on the kernel */
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        nl_warn("cannot load the engine (%s); this program's sockets stay on the kernel", dlerror());
        return;
    }
    const struct nl_engine *(*attach)(const struct nl_host *) =
        (const struct nl_engine *(*)(const struct nl_host *))dlsym(lib, "netloom_engine_attach");
    if (!attach) {
        nl_warn("%s has no netloom_engine_attach; this program's sockets stay on the kernel", path);
        return;
    }
    /* The engine's threads (the stack's owner, the runtime's) are made during attach and inherit
     * this thread's signal mask. With the asynchronous signals blocked meanwhile, a signal sent to
     * the process (SIGALRM, SIGTERM, SIGCHLD...) still goes to one of the program's own threads,
     * as without Netloom, and ends its sleeping call with EINTR. Faults and the real-time signals
     * the runtime uses stay open. */
    sigset_t async, saved;
    sigemptyset(&async);
    for (int s = 1; s < 32; s++)
        if (s != SIGSEGV && s != SIGBUS && s != SIGFPE && s != SIGILL && s != SIGTRAP && s != SIGSYS)
            sigaddset(&async, s);
    pthread_sigmask(SIG_BLOCK, &async, &saved);
    const struct nl_engine *e = attach(&host);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (!e) return; /* the engine said why */
    if (e->version != NL_ENGINE_VERSION || e->size != (int32_t)sizeof(struct nl_engine)) {
        nl_warn("engine version %d (size %d) does not match the interposer's %d (size %d); sockets stay on the kernel",
                e->version, e->size, NL_ENGINE_VERSION, (int)sizeof(struct nl_engine));
        return;
    }
    __atomic_store_n(&nl_engine, e, __ATOMIC_RELEASE);
    atexit(at_exit);
}

const struct nl_engine *nl_engine_get(void)
{
    if (nl_in_child) return NULL;
    const struct nl_engine *e = __atomic_load_n(&nl_engine, __ATOMIC_ACQUIRE);
    if (e) return e;
    nl_depth++;
    pthread_once(&load_once, load);
    nl_depth--;
    return __atomic_load_n(&nl_engine, __ATOMIC_ACQUIRE);
}

long nl_result(long r)
{
    if (r >= 0) return r;
    errno = (int)-r;
    return -1;
}

long nl_child_refuses(int fd)
{
    static int said;
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        nl_warn("fd %d is a Netloom socket of the parent process (pid %d); a forked child cannot use it, "
                "so its calls fail with EBADF (docs/RUN.md, \"fork\")", fd, (int)getppid());
    errno = EBADF;
    return -1;
}

/* Only a child of a process whose engine runs is cut off: a program that forks before its first
 * socket (daemon(3), a shell starting a command) loads the engine in the child as usual. */
/* Closes the offload engine queued (files after a read in its ring) go in before a fork, so the
 * child does not inherit descriptors the program already closed. */
static void settle_before_fork(void)
{
    const struct nl_engine *e = __atomic_load_n(&nl_engine, __ATOMIC_ACQUIRE);
    if (e && e->settle && !nl_in_child) e->settle(-1);
}

static void child_after_fork(void)
{
    if (__atomic_load_n(&nl_engine, __ATOMIC_ACQUIRE)) nl_in_child = 1;
}

/* vfork shares the parent's memory, so a vfork child writing nl_in_child would write the
 * parent's. As Onload does by default, vfork becomes fork. */
pid_t vfork(void) { return fork(); }

__attribute__((constructor)) static void nl_init(void)
{
    nl_real_init();
    nl_tables_init();
    pthread_atfork(settle_before_fork, NULL, child_after_fork);
}
