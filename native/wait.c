/* Waiting: poll, ppoll, select, pselect and epoll. A wait that involves no Netloom socket is
 * libc's; any other is the engine's, which checks the user-level sockets first and then waits
 * in the kernel on the rest together with its own wake-up descriptor. */
#include "netloom.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>

static long to_ns_ms(int timeout_ms) { return timeout_ms < 0 ? -1 : (long)timeout_ms * 1000000L; }
/* A timeout past 2^62 ns (about 146 years) is as good as none, and would overflow a deadline. */
static long to_ns_ts(const struct timespec *t) { return !t || t->tv_sec >= 4611686018L ? -1 : (long)t->tv_sec * 1000000000L + t->tv_nsec; }
static long to_ns_tv(const struct timeval *t) { return !t || t->tv_sec >= 4611686018L ? -1 : (long)t->tv_sec * 1000000000L + (long)t->tv_usec * 1000L; }

static int any_ours(const struct pollfd *fds, nfds_t n)
{
    if (nl_in_child || !nl_fd_ours) return 0;
    for (nfds_t i = 0; i < n; i++)
        if (nl_ours(fds[i].fd)) return 1;
    return 0;
}

static int any_ours_set(int nfds, const fd_set *r, const fd_set *w, const fd_set *e)
{
    if (nl_in_child || !nl_fd_ours) return 0;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
        if (nl_fd_ours[fd] && ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))) return 1;
    return 0;
}

int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    if (!any_ours(fds, n)) return REAL(poll)(fds, n, timeout_ms);
    return (int)nl_result(nl_engine->poll(fds, n, to_ns_ms(timeout_ms), NULL));
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask)
{
    if (!any_ours(fds, n)) return REAL(ppoll)(fds, n, timeout, mask);
    return (int)nl_result(nl_engine->poll(fds, n, to_ns_ts(timeout), mask));
}

extern void __chk_fail(void) __attribute__((noreturn));
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout_ms, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n) __chk_fail();
    return poll(fds, n, timeout_ms);
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout)
{
    if (!any_ours_set(nfds, r, w, e)) return REAL(select)(nfds, r, w, e, timeout);
    return (int)nl_result(nl_engine->select(nfds, r, w, e, to_ns_tv(timeout), NULL));
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout, const sigset_t *mask)
{
    if (!any_ours_set(nfds, r, w, e)) return REAL(pselect)(nfds, r, w, e, timeout, mask);
    return (int)nl_result(nl_engine->select(nfds, r, w, e, to_ns_ts(timeout), mask));
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (!nl_ours(fd)) {
        int r = REAL(epoll_ctl)(epfd, op, fd, ev);
        if (r == 0 && op == EPOLL_CTL_ADD) nl_mark_epoll_kernel(epfd); /* kept after DEL: a hint, never wrong to ask */
        return r;
    }
    if (nl_in_child) return (int)nl_child_refuses(fd);
    return (int)nl_result(nl_engine->epoll_ctl(epfd, op, fd, ev));
}

/* A set without Netloom members is waited on in the kernel. Another thread may add a Netloom
 * socket to it meanwhile (a dispatcher handing a connection to a sleeping worker), which the
 * kernel would not see: the engine then marks the set (nl_mark_epoll), and when threads sleep in
 * it, the interposer puts its own wake-up in the set: an eventfd kept readable, added one-shot
 * with NL_WAKE_MARK as its data. One sleeper takes the event, drops it and goes on waiting in the
 * engine, which now knows the member; whoever drops the event (that sleeper, or an engine's own
 * kernel ask) re-arms it while threads still sleep there, so each wakes in turn, and takes it out
 * of the set after the last. */
static int wake_fd = -1;

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* The wake-up descriptor, made on first use above the numbers a program usually reuses, so a
 * close that bypasses the wrappers (closefrom inside libc) is unlikely to free a number the
 * program then gets back. */
static int wake_descriptor(void)
{
    int fd = __atomic_load_n(&wake_fd, __ATOMIC_ACQUIRE);
    if (fd >= 0) return fd;
    int made = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK); /* readable for good: it is never read */
    if (made < 0) return -1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 512) {
        int high = REAL(fcntl)(made, F_DUPFD_CLOEXEC, (int)(rl.rlim_cur - 32 < 4000 ? rl.rlim_cur - 32 : 4000));
        if (high >= 0) { REAL(close)(made); made = high; }
    }
    int none = -1;
    if (__atomic_compare_exchange_n(&wake_fd, &none, made, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return made;
    REAL(close)(made);
    return none;
}

static void wake_arm(int epfd, int add)
{
    int fd = wake_descriptor();
    if (fd < 0) return;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = NL_WAKE_MARK };
    if (REAL(epoll_ctl)(epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT && add) REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void nl_epoll_gained(int epfd)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the mark before the count: pairs with kernel_epoll_counted */
    if (!nl_epoll_sleepers || __atomic_load_n(&nl_epoll_sleepers[epfd], __ATOMIC_SEQ_CST) == 0) return;
    int e = errno;
    nl_mark_epoll_wake(epfd, 1); /* first: from now on the engines ask the kernel about this set, and drop the event */
    wake_arm(epfd, 1);
    errno = e;
}

/* The wake-up's event was taken and dropped: the next sleeper's turn, or none left. Only re-armed
 * here, never added: once taken out it stays out. */
void nl_wake_consumed(int epfd)
{
    if (epfd < 0 || epfd >= NL_MAX_FD || !nl_epoll_sleepers) return;
    int e = errno;
    if (__atomic_load_n(&nl_epoll_sleepers[epfd], __ATOMIC_SEQ_CST) > 0) wake_arm(epfd, 0);
    else {
        int fd = __atomic_load_n(&wake_fd, __ATOMIC_ACQUIRE);
        if (fd >= 0) REAL(epoll_ctl)(epfd, EPOLL_CTL_DEL, fd, NULL);
        nl_mark_epoll_wake(epfd, 0);
    }
    errno = e;
}

/* The program closes the wake-up's number (close_range over everything, say): forget it, so a
 * later wake-up makes a new one instead of adding whatever the number becomes. */
void nl_wake_forget(int first, int last)
{
    int fd = __atomic_load_n(&wake_fd, __ATOMIC_ACQUIRE);
    if (fd >= first && fd <= last) __atomic_compare_exchange_n(&wake_fd, &fd, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Drops the wake-up's events from a kernel answer; returns how many are left, *woken = 1 if any went. */
static int drop_marks(struct epoll_event *events, int r, int *woken)
{
    int k = 0;
    *woken = 0;
    for (int i = 0; i < r; i++) {
        if (events[i].data.u64 == NL_WAKE_MARK) *woken = 1;
        else events[k++] = events[i];
    }
    return k;
}

/* The kernel's epoll_pwait, or epoll_pwait2 (precise: a timespec to the nanosecond), with a
 * timeout in nanoseconds (-1: none). */
static int kernel_epoll(int epfd, struct epoll_event *events, int max, long timeout_ns, const sigset_t *mask, int precise)
{
    if (!precise) return REAL(epoll_pwait)(epfd, events, max, timeout_ns < 0 ? -1 : (int)(timeout_ns / 1000000L), mask);
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L };
    return REAL(epoll_pwait2)(epfd, events, max, timeout_ns < 0 ? NULL : &ts, mask);
}

/* kernel_epoll_counted's answer when the set gained a Netloom member during the wait and nothing
 * else came: the wait goes on in the engine. */
#define NL_EPOLL_MOVED (-1000)

static int kernel_epoll_counted(int epfd, struct epoll_event *events, int max, long timeout_ns, const sigset_t *mask, int precise)
{
    if (!nl_epoll_sleepers || epfd < 0 || epfd >= NL_MAX_FD) return kernel_epoll(epfd, events, max, timeout_ns, mask, precise);
    __atomic_add_fetch(&nl_epoll_sleepers[epfd], 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&nl_epoll_ours[epfd], __ATOMIC_SEQ_CST) & NL_EPOLL_OURS) {
        __atomic_sub_fetch(&nl_epoll_sleepers[epfd], 1, __ATOMIC_SEQ_CST);
        return NL_EPOLL_MOVED; /* a member came between the caller's look and the count */
    }
    int r = kernel_epoll(epfd, events, max, timeout_ns, mask, precise);
    int e = errno;
    __atomic_sub_fetch(&nl_epoll_sleepers[epfd], 1, __ATOMIC_SEQ_CST);
    if (r > 0) {
        int woken;
        r = drop_marks(events, r, &woken);
        if (woken) nl_wake_consumed(epfd);
        if (r == 0 && woken) return NL_EPOLL_MOVED;
    }
    errno = e;
    return r;
}

/* A forked child waits in the kernel (the engine is its parent's), without the wake-up's events. */
static int child_epoll_wait(int epfd, struct epoll_event *events, int max, long timeout_ns, const sigset_t *mask, int precise)
{
    long deadline = timeout_ns > 0 ? now_ns() + timeout_ns : 0;
    while (1) {
        int woken, r = kernel_epoll(epfd, events, max, timeout_ns, mask, precise);
        if (r <= 0) return r;
        r = drop_marks(events, r, &woken);
        if (r > 0 || timeout_ns == 0) return r;
        if (timeout_ns > 0) { timeout_ns = deadline - now_ns(); if (timeout_ns <= 0) return 0; }
    }
}

static int epoll_wait_any(int epfd, struct epoll_event *events, int max, long timeout_ns, const sigset_t *mask, int precise)
{
    if (nl_in_child) return child_epoll_wait(epfd, events, max, timeout_ns, mask, precise);
    if (!nl_epoll_has_ours(epfd)) {
        long deadline = timeout_ns > 0 ? now_ns() + timeout_ns : 0;
        int r = kernel_epoll_counted(epfd, events, max, timeout_ns, mask, precise);
        if (r != NL_EPOLL_MOVED) return r;
        if (timeout_ns > 0) { timeout_ns = deadline - now_ns(); if (timeout_ns < 0) timeout_ns = 0; }
    }
    return (int)nl_result(nl_engine->epoll_wait(epfd, events, max, timeout_ns, mask));
}

int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout_ms)
{
    return epoll_wait_any(epfd, events, max, to_ns_ms(timeout_ms), NULL, 0);
}

int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout_ms, const sigset_t *mask)
{
    return epoll_wait_any(epfd, events, max, to_ns_ms(timeout_ms), mask, 0);
}

/* glibc 2.35 and later; the engine takes its timeout to the nanosecond as it is. */
int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *timeout, const sigset_t *mask)
{
    if (!REAL(epoll_pwait2)) { errno = ENOSYS; return -1; } /* a libc without it: as that libc would answer */
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L)) { errno = EINVAL; return -1; }
    return epoll_wait_any(epfd, events, max, to_ns_ts(timeout), mask, 1);
}
