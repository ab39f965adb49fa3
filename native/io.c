/* Reading and writing. Calls on Netloom sockets reach the engine as recvmsg/sendmsg: the
 * wrappers only describe their buffer as a msghdr. */
#include "netloom.h"
#include <errno.h>
#include <string.h>

static long engine_recv(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    struct iovec v = { buf, n };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    if (from && fromlen) { m.msg_name = from; m.msg_namelen = *fromlen; }
    long r = nl_engine->recvmsg(fd, &m, flags);
    if (r >= 0 && from && fromlen) *fromlen = m.msg_namelen;
    return r;
}

static long engine_send(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen)
{
    struct iovec v = { (void *)buf, n };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_name = (void *)to;
    m.msg_namelen = to ? tolen : 0;
    return nl_engine->sendmsg(fd, &m, flags);
}

/* readv and writev: the same iovec array, described as a msghdr. */
static struct msghdr vector_msg(const struct iovec *iov, int n)
{
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)n;
    return m;
}

static long engine_readv(int fd, const struct iovec *iov, int n)
{
    struct msghdr m = vector_msg(iov, n);
    return nl_engine->recvmsg(fd, &m, 0);
}

static long engine_writev(int fd, const struct iovec *iov, int n)
{
    struct msghdr m = vector_msg(iov, n);
    return nl_engine->sendmsg(fd, &m, 0);
}

/* A datagram or stream call the engine could not take is the kernel's: the fd was handed over. */
#define IO_ROUTE(fd, engine_expr, real_call)               \
    do {                                                   \
        if (!nl_ours(fd)) return real_call;                \
        if (nl_in_child) return nl_child_refuses(fd);      \
        long r_ = engine_expr;                             \
        if (r_ == NL_KERNEL) return real_call;             \
        return nl_result(r_);                              \
    } while (0)

ssize_t read(int fd, void *buf, size_t n)
{ IO_ROUTE(fd, engine_recv(fd, buf, n, 0, NULL, NULL), REAL(read)(fd, buf, n)); }

ssize_t readv(int fd, const struct iovec *iov, int n)
{ IO_ROUTE(fd, engine_readv(fd, iov, n), REAL(readv)(fd, iov, n)); }

ssize_t write(int fd, const void *buf, size_t n)
{ IO_ROUTE(fd, engine_send(fd, buf, n, 0, NULL, 0), REAL(write)(fd, buf, n)); }

ssize_t writev(int fd, const struct iovec *iov, int n)
{ IO_ROUTE(fd, engine_writev(fd, iov, n), REAL(writev)(fd, iov, n)); }

ssize_t recv(int fd, void *buf, size_t n, int flags)
{ IO_ROUTE(fd, engine_recv(fd, buf, n, flags, NULL, NULL), REAL(recv)(fd, buf, n, flags)); }

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{ IO_ROUTE(fd, engine_recv(fd, buf, n, flags, from, fromlen), REAL(recvfrom)(fd, buf, n, flags, from, fromlen)); }

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{ IO_ROUTE(fd, nl_engine->recvmsg(fd, msg, flags), REAL(recvmsg)(fd, msg, flags)); }

ssize_t send(int fd, const void *buf, size_t n, int flags)
{ IO_ROUTE(fd, engine_send(fd, buf, n, flags, NULL, 0), REAL(send)(fd, buf, n, flags)); }

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen)
{ IO_ROUTE(fd, engine_send(fd, buf, n, flags, to, tolen), REAL(sendto)(fd, buf, n, flags, to, tolen)); }

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{ IO_ROUTE(fd, nl_engine->sendmsg(fd, msg, flags), REAL(sendmsg)(fd, msg, flags)); }

/* recvmmsg and sendmmsg: one message after another, as the kernel does for a stream socket; a
 * later message that would block ends the batch with what was done. MSG_WAITFORONE (recvmmsg)
 * makes every message after the first non-blocking. */
int recvmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags, struct timespec *timeout)
{
    if (!nl_ours(fd)) return REAL(recvmmsg)(fd, msgs, n, flags, timeout);
    if (nl_in_child) return (int)nl_child_refuses(fd);
    unsigned done = 0;
    for (; done < n; done++) {
        int f = flags & ~MSG_WAITFORONE;
        if (done > 0 && (flags & MSG_WAITFORONE)) f |= MSG_DONTWAIT;
        long r = nl_engine->recvmsg(fd, &msgs[done].msg_hdr, f);
        if (r == NL_KERNEL && done == 0) return REAL(recvmmsg)(fd, msgs, n, flags, timeout);
        if (r < 0) { if (done == 0) return (int)nl_result(r); break; }
        msgs[done].msg_len = (unsigned)r;
    }
    return (int)done;
}

int sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags)
{
    if (!nl_ours(fd)) return REAL(sendmmsg)(fd, msgs, n, flags);
    if (nl_in_child) return (int)nl_child_refuses(fd);
    unsigned done = 0;
    for (; done < n; done++) {
        long r = nl_engine->sendmsg(fd, &msgs[done].msg_hdr, flags);
        if (r == NL_KERNEL && done == 0) return REAL(sendmmsg)(fd, msgs, n, flags);
        if (r < 0) { if (done == 0) return (int)nl_result(r); break; }
        msgs[done].msg_len = (unsigned)r;
    }
    return (int)done;
}

ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{ IO_ROUTE(out, nl_engine->sendfile(out, in, offset, count), REAL(sendfile)(out, in, offset, count)); }

ssize_t sendfile64(int out, int in, off_t *offset, size_t count)
{ IO_ROUTE(out, nl_engine->sendfile(out, in, offset, count), REAL(sendfile64)(out, in, offset, count)); }

/* _FORTIFY_SOURCE builds call these: the same checks as glibc's, then the wrappers above. */
extern void __chk_fail(void) __attribute__((noreturn));

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{ if (n > buflen) __chk_fail(); return read(fd, buf, n); }

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{ if (n > buflen) __chk_fail(); return recv(fd, buf, n, flags); }

ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *from, socklen_t *fromlen)
{ if (n > buflen) __chk_fail(); return recvfrom(fd, buf, n, flags, from, fromlen); }
