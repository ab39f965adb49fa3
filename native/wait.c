/* Waiting: poll, ppoll, select, pselect and epoll. A wait that involves no Netloom socket is
 * libc's; any other is the engine's, which checks the user-level sockets first and then waits
 * in the kernel on the rest together with its own wake-up descriptor. */
#include "netloom.h"
#include <errno.h>

static long to_ns_ms(int timeout_ms) { return timeout_ms < 0 ? -1 : (long)timeout_ms * 1000000L; }
static long to_ns_ts(const struct timespec *t) { return t ? (long)t->tv_sec * 1000000000L + t->tv_nsec : -1; }
static long to_ns_tv(const struct timeval *t) { return t ? (long)t->tv_sec * 1000000000L + (long)t->tv_usec * 1000L : -1; }

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

int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout_ms)
{
    if (nl_in_child || !nl_epoll_has_ours(epfd)) return REAL(epoll_wait)(epfd, events, max, timeout_ms);
    return (int)nl_result(nl_engine->epoll_wait(epfd, events, max, to_ns_ms(timeout_ms), NULL));
}

int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout_ms, const sigset_t *mask)
{
    if (nl_in_child || !nl_epoll_has_ours(epfd)) return REAL(epoll_pwait)(epfd, events, max, timeout_ms, mask);
    return (int)nl_result(nl_engine->epoll_wait(epfd, events, max, to_ns_ms(timeout_ms), mask));
}
