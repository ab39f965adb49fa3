/* Descriptor calls: close, dup, fcntl, ioctl. A Netloom socket's fd is a real kernel socket that
 * holds the number (never bound, never connected), so dup2, close and fcntl's descriptor flags
 * act on it as on any fd; the engine hears of each new alias and each close. */
#include "netloom.h"
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

int close(int fd)
{
    nl_wake_forget(fd, fd);
    if (nl_epoll_has_ours(fd) && !nl_in_child) nl_engine->epoll_close(fd);
    nl_forget_epoll(fd);
    if (nl_ours(fd)) {
        if (nl_in_child) nl_mark(fd, 0); /* the child drops its copy; the parent's socket lives on */
        else {
            long r = nl_engine->close(fd); /* unmarks fd before libc frees the number */
            if (r < 0 && r != NL_KERNEL) { REAL(close)(fd); return (int)nl_result(r); }
        }
    } else if (nl_engine && nl_engine->close_file && !nl_in_child && fd >= 0 && nl_engine->close_file(fd) == 0) {
        return 0; /* queued in the offload engine's ring, behind the read that names the file */
    }
    return REAL(close)(fd);
}

/* The offload engine may hold closes of these numbers queued: they go in before the program reuses them. */
static void settle(int fd)
{
    if (nl_engine && nl_engine->settle && !nl_in_child) nl_engine->settle(fd);
}

int close_range(unsigned first, unsigned last, int flags)
{
    settle(-1);
    if (!(flags & CLOSE_RANGE_CLOEXEC)) nl_wake_forget((int)(first > INT32_MAX ? INT32_MAX : first), (int)(last > INT32_MAX ? INT32_MAX : last));
    if (!(flags & CLOSE_RANGE_CLOEXEC) && nl_fd_ours) {
        unsigned end = last < NL_MAX_FD ? last : NL_MAX_FD - 1;
        for (unsigned fd = first; fd <= end && fd < NL_MAX_FD; fd++)
            if (nl_fd_ours[fd] || nl_epoll_ours[fd]) close((int)fd);
    }
    return REAL(close_range)(first, last, flags);
}

/* glibc's closefrom closes through the system call itself, past close_range's wrapper: routed
 * here, Netloom sockets and the interposer's own descriptor are let go as close_range does. */
void closefrom(int lowfd)
{
    if (close_range((unsigned)(lowfd < 0 ? 0 : lowfd), ~0U, 0) == 0) return;
    if (REAL(closefrom)) REAL(closefrom)(lowfd); /* a kernel without close_range: libc's own way */
}

/* After libc made newfd a copy of oldfd: tell the engine newfd is another name for the socket. */
static int aliased(int oldfd, int newfd)
{
    if (newfd < 0) return newfd;
    long r = nl_engine->dup(oldfd, newfd);
    if (r < 0) { REAL(close)(newfd); return (int)nl_result(r); }
    return newfd;
}

int dup(int fd)
{
    if (!nl_ours(fd)) return REAL(dup)(fd);
    if (nl_in_child) return (int)nl_child_refuses(fd);
    return aliased(fd, REAL(dup)(fd));
}

/* dup2 and dup3 close newfd first when it is open: if it was a Netloom socket, the engine
 * forgets that name before libc reuses the number. */
static int dup_onto(int oldfd, int newfd, int flags, int three)
{
    int old_ours = nl_ours(oldfd), new_ours = nl_ours(newfd) && oldfd != newfd;
    if ((old_ours || new_ours) && nl_in_child) {
        if (old_ours) return (int)nl_child_refuses(oldfd);
        nl_mark(newfd, 0);
    } else if (new_ours) {
        nl_engine->close(newfd);
    } else if (oldfd != newfd) {
        settle(newfd);
    }
    if (oldfd != newfd) nl_wake_forget(newfd, newfd);
    int r = three ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
    if (old_ours && !nl_in_child && r >= 0 && oldfd != newfd) return aliased(oldfd, r);
    return r;
}

int dup2(int oldfd, int newfd) { return dup_onto(oldfd, newfd, 0, 0); }
int dup3(int oldfd, int newfd, int flags) { return dup_onto(oldfd, newfd, flags, 1); }

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, long arg)
{
    if (!nl_ours(fd)) return real(fd, cmd, arg);
    if (nl_in_child) return (int)nl_child_refuses(fd);
    switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        return aliased(fd, real(fd, cmd, arg));
    case F_GETFD:
    case F_SETFD: /* close-on-exec belongs to the descriptor: the kernel keeps it */
        return real(fd, cmd, arg);
    default: {
        long r = nl_engine->fcntl(fd, cmd, arg);
        if (r == NL_KERNEL) return real(fd, cmd, arg);
        return (int)nl_result(r);
    }
    }
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return fcntl_common(REAL(fcntl64), fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    ROUTE(fd, ioctl(fd, request, arg), REAL(ioctl)(fd, request, arg));
}

/* Some libraries close descriptors with syscall(SYS_close, fd) rather than close (libuv, so
 * Node.js, does it for every socket), or set up an io_uring of their own with it. Without this
 * the engine would never hear of the close: the socket stays open in it, its number stays
 * marked, and a file opened later under that number would have its reads answered by the
 * engine. The descriptor calls the interposer keeps in step (close, close_range, dup, dup2,
 * dup3, fcntl) go through their wrappers here; every other number goes to libc's syscall
 * untouched (reading six arguments, as libc's own does, whatever the caller passed). */
long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    switch (number) {
    case SYS_close: return close((int)a);
#ifdef SYS_close_range
    case SYS_close_range: return close_range((unsigned)a, (unsigned)b, (int)c);
#endif
    case SYS_dup: return dup((int)a);
#ifdef SYS_dup2
    case SYS_dup2: return dup2((int)a, (int)b);
#endif
    case SYS_dup3: return dup3((int)a, (int)b, (int)c);
    case SYS_fcntl: return fcntl((int)a, (int)b, c);
#ifdef SYS_io_uring_setup
    case SYS_io_uring_setup:
        /* A ring of the program's own would carry its socket calls past the interposer (libuv
         * with UV_USE_IO_URING=1 adds sockets to its epoll set through one): refused as a kernel
         * without io_uring would, so the program takes its epoll path. The engine's own ring is
         * made through libc's syscall, not this one. */
        if (!nl_depth) { errno = ENOSYS; return -1; }
        break;
#endif
    }
    return REAL(syscall)(number, a, b, c, d, e, f);
}
