/* netloom run: the interposer's shared declarations.
 *
 * The interposer is thin on purpose. Each interposed call asks one question in C, "is this fd
 * a Netloom socket?", and passes every other call straight to libc, so the runtime's own calls
 * and every non-network call stay at libc's speed and never enter managed code. The answers for
 * Netloom sockets (socket semantics, readiness, blocking) all live in the C# engine
 * (src/Netloom.Run), which this library loads on the first AF_INET or AF_INET6 socket. */
#ifndef NETLOOM_H
#define NETLOOM_H

#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/* Descriptors at or above this are never Netloom sockets (the engine refuses to make them). */
#define NL_MAX_FD (1 << 20)

/* An engine result that means "let the kernel do this call": the fd is (or has just become) a
 * plain kernel socket, as when a socket connects to a destination the stack does not serve. */
#define NL_KERNEL (-0x10000L)

/* The engine's entry points. Each returns a non-negative result or a negated errno. The
 * engine fills this table once; the layout is versioned with NL_ENGINE_VERSION, which both
 * sides check. Keep it in step with src/Netloom.Run/EngineTable.cs. */
#define NL_ENGINE_VERSION 1
struct nl_engine {
    int32_t version;
    int32_t size;
    long (*socket)(int domain, int type, int protocol);
    long (*close)(int fd);
    long (*dup)(int oldfd, int newfd);
    long (*bind)(int fd, const struct sockaddr *addr, socklen_t len);
    long (*listen)(int fd, int backlog);
    long (*accept4)(int fd, struct sockaddr *addr, socklen_t *len, int flags);
    long (*connect)(int fd, const struct sockaddr *addr, socklen_t len);
    long (*shutdown)(int fd, int how);
    long (*getsockopt)(int fd, int level, int name, void *value, socklen_t *len);
    long (*setsockopt)(int fd, int level, int name, const void *value, socklen_t len);
    long (*getsockname)(int fd, struct sockaddr *addr, socklen_t *len);
    long (*getpeername)(int fd, struct sockaddr *addr, socklen_t *len);
    long (*recvmsg)(int fd, struct msghdr *msg, int flags);
    long (*sendmsg)(int fd, const struct msghdr *msg, int flags);
    long (*fcntl)(int fd, int cmd, long arg);
    long (*ioctl)(int fd, unsigned long request, void *arg);
    long (*poll)(struct pollfd *fds, nfds_t n, long timeout_ns, const sigset_t *mask);
    long (*select)(int nfds, fd_set *r, fd_set *w, fd_set *e, long timeout_ns, const sigset_t *mask);
    long (*epoll_ctl)(int epfd, int op, int fd, struct epoll_event *ev);
    long (*epoll_wait)(int epfd, struct epoll_event *events, int max, long timeout_ns, const sigset_t *mask);
    long (*epoll_close)(int epfd);
    long (*sendfile)(int out, int in, off_t *offset, size_t count);
    /* The process is exiting (atexit): close the sockets, let them drain, release the port. */
    void (*at_exit)(void);
    /* Offload engine only (NULL otherwise): close of a descriptor that is not a socket of the
     * engine's; 0 when the engine queued it (a file a read in its ring named), NL_KERNEL if not. */
    long (*close_file)(int fd);
    /* Offload engine only: the program is about to reuse descriptor numbers itself (dup2/dup3 onto
     * fd, close_range, fork; fd -1 for all): submit the closes queued for them first. */
    long (*settle)(int fd);
};

/* What the engine may call back. */
struct nl_host {
    int32_t version;
    int32_t size;
    /* Marks fd as a Netloom socket (1) or not (0) in the interposer's table. */
    void (*mark)(int fd, int ours);
    /* Marks epfd as an epoll set with Netloom members (1) or none (0). */
    void (*mark_epoll)(int epfd, int ours);
    /* Writes one line to stderr, prefixed "netloom: ". */
    void (*warn)(const char *line);
    /* 1 when kernel descriptors were ever added to epfd (the engine may skip asking the kernel). */
    int (*epoll_kernel)(int epfd);
    /* How many of the program's signal handlers ran on this thread so far (signals.c): all of
     * them (all = 1), or those without SA_RESTART (all = 0). A wait whose count moved was
     * interrupted. */
    unsigned long (*handled)(int all);
    /* The engine found the interposer's wake-up event (NL_WAKE_MARK) among a kernel answer for
     * epfd and dropped it: re-armed while threads still sleep there, else taken out of the set. */
    void (*wake_consumed)(int epfd);
};

/* fdtable.c: the "is it ours" tables, written by the engine through nl_host. */
extern volatile uint8_t *nl_fd_ours, *nl_epoll_ours;
/* Per epoll descriptor: how many threads sleep in the kernel's epoll_wait on it now (wait.c). */
extern int32_t *nl_epoll_sleepers;
static inline int nl_ours(int fd) { return fd >= 0 && fd < NL_MAX_FD && nl_fd_ours && nl_fd_ours[fd]; }
/* Per epoll descriptor: NL_EPOLL_OURS when it has Netloom members (the engine says so),
 * NL_EPOLL_KERNEL once a kernel descriptor was added to it (epoll_ctl here says so). */
#define NL_EPOLL_OURS 1
#define NL_EPOLL_KERNEL 2
/* The interposer's wake-up is in the set (wait.c): the engines ask the kernel about it too. */
#define NL_EPOLL_WAKE 4
static inline int nl_epoll_has_ours(int epfd) { return epfd >= 0 && epfd < NL_MAX_FD && nl_epoll_ours && (nl_epoll_ours[epfd] & NL_EPOLL_OURS); }
/* The data of the interposer's own event in a program's epoll set (the wake-up below), which no
 * call returns to the program: not a canonical address, nor a descriptor number. */
#define NL_WAKE_MARK 0x4e4c574b4d41524bULL
void nl_tables_init(void);
void nl_mark(int fd, int ours);
void nl_mark_epoll(int epfd, int ours);
void nl_wake_forget(int first, int last);
void nl_epoll_gained(int epfd);
void nl_wake_consumed(int epfd);
void nl_mark_epoll_wake(int epfd, int armed);
void nl_mark_epoll_kernel(int epfd);
int nl_epoll_kernel(int epfd);
void nl_forget_epoll(int epfd);

/* signals.c: the program's signal handlers, counted per thread. */
unsigned long nl_handled(int all);

/* engine.c: loading the engine and turning its results into errno. */
extern const struct nl_engine *nl_engine;
extern int nl_in_child;        /* set in a forked child: the engine cannot run there */
/* Non-zero while this thread is inside the engine (or loading it): the runtime's own calls,
 * .NET probing AF_INET support while it starts among them, go straight to libc. */
extern __thread int nl_depth;
const struct nl_engine *nl_engine_get(void); /* loads on first use; NULL when disabled or failed */
long nl_result(long r);        /* r < 0: errno = -r, return -1 */
long nl_child_refuses(int fd); /* a forked child touched its parent's socket: EBADF, said once */
void nl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* real.c: libc's own functions, found with dlsym(RTLD_NEXT). */
struct nl_real {
    int (*socket)(int, int, int);
    int (*close)(int);
    int (*close_range)(unsigned, unsigned, int);
    void (*closefrom)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*shutdown)(int, int);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned, int, struct timespec *);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned, int);
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    ssize_t (*sendfile64)(int, int, off_t *, size_t);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int (*epoll_create)(int);
    int (*epoll_create1)(int);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
    pid_t (*fork)(void);
    long (*syscall)(long, ...);
};
extern struct nl_real nl_real;
void nl_real_init(void);

#define REAL(name) (nl_real.name ? nl_real.name : (nl_real_init(), nl_real.name))

/* For a call on fd: libc when fd is not ours, EBADF in a forked child, else the engine, and libc
 * again when the engine hands the call over (NL_KERNEL). */
#define ROUTE(fd, engine_call, real_call)                  \
    do {                                                   \
        if (!nl_ours(fd)) return real_call;                \
        if (nl_in_child) return nl_child_refuses(fd);      \
        nl_depth++;                                        \
        long r_ = nl_engine->engine_call;                  \
        nl_depth--;                                        \
        if (r_ == NL_KERNEL) return real_call;             \
        return nl_result(r_);                              \
    } while (0)


#endif
