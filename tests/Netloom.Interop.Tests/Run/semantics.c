/* The socket semantics `netloom run` must keep, checked the way a C program sees them.
 *
 *   semantics peer ADDR PORT     a plain kernel (or netloom run) peer with scripted behaviours
 *   semantics check ADDR PORT    the checks, against that peer; prints "ok NAME" or "FAIL NAME: why"
 *
 * The first byte a client sends picks the peer's behaviour:
 *   E echo until EOF            R send 100000 bytes, then reset (SO_LINGER 0)
 *   H read to EOF, reply "bye"  S send "hello", wait for 'G', send "world", wait for EOF
 *   W wait for EOF              L read to EOF or error, remember which; Q replies with it
 * The peer also echoes UDP datagrams on the same port. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in peer_addr;
static int failures;

#define CHECK(name, cond, ...) do { if (cond) printf("ok %s\n", name); else { printf("FAIL %s: ", name); printf(__VA_ARGS__); printf("\n"); failures++; } fflush(stdout); } while (0)

static struct sockaddr_in addr_of(const char *ip, int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int connect_to(struct sockaddr_in a, char command)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (command && send(fd, &command, 1, MSG_NOSIGNAL) != 1) { close(fd); return -1; }
    return fd;
}

static ssize_t read_full(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0) return got ? (ssize_t)got : r;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---------------- the peer ---------------- */

static char last_l[8] = "none";

static void *serve(void *arg)
{
    int fd = (int)(long)arg;
    char c, buf[65536];
    if (recv(fd, &c, 1, 0) != 1) { close(fd); return NULL; }
    switch (c) {
    case 'E': { ssize_t n; while ((n = recv(fd, buf, sizeof buf, 0)) > 0) send(fd, buf, (size_t)n, MSG_NOSIGNAL); break; }
    case 'R': {
        memset(buf, 'r', sizeof buf);
        send(fd, buf, 65536, MSG_NOSIGNAL); send(fd, buf, 100000 - 65536, MSG_NOSIGNAL);
        usleep(100000);
        struct linger l = { 1, 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        break;
    }
    case 'H': { while (recv(fd, buf, sizeof buf, 0) > 0) {} send(fd, "bye", 3, MSG_NOSIGNAL); break; }
    case 'S': {
        send(fd, "hello", 5, MSG_NOSIGNAL);
        if (recv(fd, &c, 1, 0) == 1) send(fd, "world", 5, MSG_NOSIGNAL);
        while (recv(fd, buf, sizeof buf, 0) > 0) {}
        break;
    }
    case 'W': { while (recv(fd, buf, sizeof buf, 0) > 0) {} break; }
    case 'L': {
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {}
        strcpy(last_l, n == 0 ? "EOF" : errno == ECONNRESET ? "RST" : "ERR");
        break;
    }
    case 'Q': send(fd, last_l, strlen(last_l), MSG_NOSIGNAL); break;
    }
    close(fd);
    return NULL;
}

static void *udp_echo(void *arg)
{
    int u = (int)(long)arg;
    char buf[65536];
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n >= 0) sendto(u, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
    }
    return NULL;
}

static int peer(struct sockaddr_in a)
{
    signal(SIGPIPE, SIG_IGN);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 64) < 0) { perror("peer: bind/listen"); return 1; }
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(u, (struct sockaddr *)&a, sizeof a) < 0) { perror("peer: udp bind"); return 1; }
    pthread_t t;
    pthread_create(&t, NULL, udp_echo, (void *)(long)u);
    printf("peer listening\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) continue;
        pthread_create(&t, NULL, serve, (void *)(long)fd);
        pthread_detach(t);
    }
}

/* ---------------- the checks ---------------- */

static void check_refused(void)
{
    struct sockaddr_in closed = peer_addr;
    closed.sin_port = htons((unsigned short)(ntohs(peer_addr.sin_port) + 1));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(fd, (struct sockaddr *)&closed, sizeof closed);
    CHECK("connect-refused-blocking", r < 0 && errno == ECONNREFUSED, "connect returned %d errno %d (%s)", r, errno, strerror(errno));
    close(fd);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(fd, (struct sockaddr *)&closed, sizeof closed);
    int inprogress = r < 0 && errno == EINPROGRESS;
    struct pollfd p = { fd, POLLOUT, 0 };
    int pr = poll(&p, 1, 5000);
    int err = -1;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    CHECK("connect-refused-nonblocking", inprogress && pr == 1 && (p.revents & (POLLOUT | POLLERR)) && err == ECONNREFUSED,
          "connect %d errno %d, poll %d revents 0x%x, SO_ERROR %d", r, errno, pr, p.revents, err);
    close(fd);
}

static void check_eagain(void)
{
    int fd = connect_to(peer_addr, 'W');
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    CHECK("eagain", r < 0 && errno == EAGAIN && (fcntl(fd, F_GETFL) & O_NONBLOCK), "recv %zd errno %d", r, errno);
    r = recv(fd, &c, 1, MSG_DONTWAIT);
    close(fd);
}

static void check_epollet(void)
{
    int fd = connect_to(peer_addr, 'S');
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 42 }, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    int first = epoll_wait(ep, out, 4, 5000);
    int data_ok = first == 1 && out[0].data.u64 == 42 && (out[0].events & EPOLLIN);
    int again = epoll_wait(ep, out, 4, 100); /* edge-triggered: nothing new, nothing reported */
    send(fd, "G", 1, 0);
    int third = epoll_wait(ep, out, 4, 5000);
    char buf[16] = { 0 };
    usleep(50000);
    ssize_t n = read_full(fd, buf, 10);
    CHECK("epoll-edge-triggered", data_ok && again == 0 && third == 1 && n == 10 && memcmp(buf, "helloworld", 10) == 0,
          "first %d, again %d, third %d, read %zd '%s'", first, again, third, n, buf);
    close(ep);
    close(fd);
}

/* One epoll set over a kernel pipe and a Netloom socket: each reports when it, and only it, is ready. */
static void check_epoll_mixed(void)
{
    int fd = connect_to(peer_addr, 'E');
    int p[2];
    if (pipe(p) != 0) { CHECK("epoll-mixed-kernel-and-netloom", 0, "pipe failed"); return; }
    int ep = epoll_create1(0);
    struct epoll_event a = { .events = EPOLLIN, .data.u64 = 1 }, b = { .events = EPOLLIN, .data.u64 = 2 }, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &a);
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &b);
    int none = epoll_wait(ep, out, 4, 50);
    if (write(p[1], "k", 1) != 1) none = -2;
    int pipe_ready = epoll_wait(ep, out, 4, 5000);
    uint64_t first = pipe_ready > 0 ? out[0].data.u64 : 0;
    char c;
    if (read(p[0], &c, 1) != 1) pipe_ready = -2;
    send(fd, "n", 1, 0);
    int sock_ready = epoll_wait(ep, out, 4, 5000);
    uint64_t second = sock_ready > 0 ? out[0].data.u64 : 0;
    CHECK("epoll-mixed-kernel-and-netloom", none == 0 && pipe_ready == 1 && first == 1 && sock_ready == 1 && second == 2,
          "idle %d, pipe %d (data %llu), socket %d (data %llu)", none, pipe_ready, (unsigned long long)first, sock_ready, (unsigned long long)second);
    close(ep); close(p[0]); close(p[1]); close(fd);
}

static void *write_pipe_later(void *arg)
{
    usleep(100000);
    if (write(*(int *)arg, "k", 1) != 1) perror("write");
    return NULL;
}

static void *send_later(void *arg)
{
    usleep(100000);
    send(*(int *)arg, "m", 1, 0);
    return NULL;
}

/* A thread asleep in epoll_wait over a kernel pipe and a Netloom socket wakes for whichever becomes
 * ready while it sleeps (the pipe written by another thread, the socket's echo arriving). */
static void check_epoll_mixed_wakes(void)
{
    int fd = connect_to(peer_addr, 'E');
    int p[2];
    if (pipe(p) != 0) { CHECK("epoll-mixed-wakes-while-asleep", 0, "pipe failed"); return; }
    int ep = epoll_create1(0);
    struct epoll_event a = { .events = EPOLLIN, .data.u64 = 1 }, b = { .events = EPOLLIN, .data.u64 = 2 }, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &a);
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &b);
    pthread_t t;
    pthread_create(&t, NULL, write_pipe_later, &p[1]);
    int pipe_ready = epoll_wait(ep, out, 4, 5000);
    uint64_t first = pipe_ready > 0 ? out[0].data.u64 : 0;
    pthread_join(t, NULL);
    char c;
    if (read(p[0], &c, 1) != 1) pipe_ready = -2;
    pthread_create(&t, NULL, send_later, &fd);
    int sock_ready = epoll_wait(ep, out, 4, 5000);
    uint64_t second = sock_ready > 0 ? out[0].data.u64 : 0;
    pthread_join(t, NULL);
    CHECK("epoll-mixed-wakes-while-asleep", pipe_ready == 1 && first == 1 && sock_ready == 1 && second == 2,
          "pipe %d (data %llu), socket %d (data %llu)", pipe_ready, (unsigned long long)first, sock_ready, (unsigned long long)second);
    close(ep); close(p[0]); close(p[1]); close(fd);
}

/* Another thread adds a Netloom socket that has bytes to the epoll set a thread sleeps on, and
 * the sleeper wakes for it, as the kernel's epoll wakes it. The set held no Netloom socket when
 * the wait began (empty, or only a kernel pipe), so that wait began in the kernel. */
struct sleeper { int ep; int got; uint64_t data; };
static void *sleep_in_epoll(void *arg)
{
    struct sleeper *s = arg;
    struct epoll_event ev;
    s->got = epoll_wait(s->ep, &ev, 1, 30000);
    s->data = s->got > 0 ? ev.data.u64 : 0;
    return NULL;
}

static void check_epoll_add_wakes(const char *name, int with_pipe, int nsleepers)
{
    int p[2] = { -1, -1 };
    int ep = epoll_create1(0);
    struct sleeper s[2] = { { .ep = ep, .got = -2 }, { .ep = ep, .got = -2 } };
    if (with_pipe) {
        if (pipe(p) != 0) { CHECK(name, 0, "pipe failed"); return; }
        struct epoll_event pe = { .events = EPOLLIN, .data.u64 = 1 };
        epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &pe);
    }
    int fd = connect_to(peer_addr, 'S'); /* the peer sends "hello" at once */
    char c;
    ssize_t peeked = recv(fd, &c, 1, MSG_PEEK);
    pthread_t t[2];
    for (int i = 0; i < nsleepers; i++) pthread_create(&t[i], NULL, sleep_in_epoll, &s[i]);
    usleep(200 * 1000); /* the threads sleep, the bytes are there */
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 2 };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    /* Woken by the add, not by the 30 s timeout: 5 s is a hang. Level-triggered, every sleeper
     * of the set sees the socket ready, as with the kernel's epoll. */
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 5;
    int woken = 0, right = 0;
    for (int i = 0; i < nsleepers; i++) {
        if (pthread_timedjoin_np(t[i], NULL, &limit) == 0) woken++;
        else pthread_join(t[i], NULL);
        if (s[i].got == 1 && s[i].data == 2) right++;
    }
    CHECK(name, peeked == 1 && woken == nsleepers && right == nsleepers, "%d of %d sleepers woken within 5 s of the add, %d returned the socket (first: %d, data %llu)",
          woken, nsleepers, right, s[0].got, (unsigned long long)s[0].data);
    close(ep); close(fd);
    if (with_pipe) { close(p[0]); close(p[1]); }
}

/* epoll_pwait2 (glibc 2.35: a timespec timeout, to the nanosecond) reports Netloom sockets as
 * epoll_wait does, and times out as asked when none is ready. */
static void check_epoll_pwait2(void)
{
    int fd = connect_to(peer_addr, 'S'); /* the peer sends "hello" at once */
    char buf[8];
    ssize_t peeked = recv(fd, buf, 1, MSG_PEEK);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 }, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    struct timespec two = { .tv_sec = 2 }, brief = { .tv_nsec = 50 * 1000 * 1000 }, t0, t1;
    int ready = epoll_pwait2(ep, out, 2, &two, NULL);
    uint64_t data = ready > 0 ? out[0].data.u64 : 0;
    ssize_t got = read_full(fd, buf, 5);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int idle = epoll_pwait2(ep, out, 2, &brief, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK("epoll-pwait2", peeked == 1 && ready == 1 && data == 7 && got == 5 && idle == 0 && ms >= 40,
          "ready %d (data %llu), read %zd, then %d after %ld ms", ready, (unsigned long long)data, got, idle, ms);
    close(ep); close(fd);
}

static void on_alarm(int sig) { (void)sig; }

/* A signal whose handler lacks SA_RESTART ends a blocking recv and an epoll_wait with EINTR. */
static void check_eintr(void)
{
    int fd = connect_to(peer_addr, 'W');
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval tv = { .it_value = { .tv_usec = 130000 } };
    char c;
    setitimer(ITIMER_REAL, &tv, NULL);
    ssize_t r = recv(fd, &c, 1, 0);
    int recv_errno = errno;
    int ep = epoll_create1(0);
    struct epoll_event b = { .events = EPOLLIN }, out[1];
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &b);
    setitimer(ITIMER_REAL, &tv, NULL);
    int w = epoll_wait(ep, out, 1, 5000);
    int wait_errno = errno;
    signal(SIGALRM, SIG_DFL);
    CHECK("eintr-without-sa-restart", r == -1 && recv_errno == EINTR && w == -1 && wait_errno == EINTR,
          "recv %zd (%s), epoll_wait %d (%s)", r, strerror(recv_errno), w, strerror(wait_errno));
    close(ep);
    close(fd);
}

static volatile sig_atomic_t restart_alarms;
static void on_restart_alarm(int sig) { (void)sig; restart_alarms++; }

/* Sends "ping" 300 ms on, with SIGALRM blocked: the alarm goes to the thread in recv. */
static void *ping_later(void *arg)
{
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    usleep(300000);
    if (send(*(int *)arg, "ping", 4, 0) != 4) perror("send");
    return NULL;
}

/* A handler installed with SA_RESTART (BSD signal) does not end a blocking recv without a
 * timeout: the kernel restarts it, so the engine goes on waiting, and the echo arrives. */
static void check_sa_restart(void)
{
    int fd = connect_to(peer_addr, 'E');
    restart_alarms = 0;
    signal(SIGALRM, on_restart_alarm);
    pthread_t t;
    pthread_create(&t, NULL, ping_later, &fd);
    struct itimerval tv = { .it_value = { .tv_usec = 100000 } };
    setitimer(ITIMER_REAL, &tv, NULL);
    char buf[8] = { 0 };
    ssize_t r = recv(fd, buf, 4, MSG_WAITALL);
    int e = errno;
    pthread_join(t, NULL);
    signal(SIGALRM, SIG_DFL);
    CHECK("sa-restart-resumes-a-blocking-recv", r == 4 && memcmp(buf, "ping", 4) == 0 && restart_alarms == 1,
          "recv %zd '%s' (%s) after %d alarm(s)", r, buf, r < 0 ? strerror(e) : "ok", (int)restart_alarms);
    close(fd);
}

static volatile sig_atomic_t rearm_runs;
static void on_rearm(int sig)
{
    rearm_runs++;
    struct sigaction now;
    sigaction(sig, NULL, &now); /* read inside a socket call: this handler, as installed */
    sigaction(sig, &now, NULL); /* and put back as read */
    sysv_signal(sig, on_rearm); /* System V style: the handler re-arms itself */
}

/* A handler that reads its own action back and re-arms itself while the thread waits in a socket
 * call keeps working: each alarm ends the wait with EINTR (System V signals have no SA_RESTART)
 * and runs the handler once. The wait is a blocking accept, a call the interposer marks as inside
 * the engine, where the engine's own runtime would install its handlers unwrapped. */
static void check_rearming_handler(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(l, (struct sockaddr *)&any, sizeof any) != 0 || listen(l, 1) != 0) { CHECK("a-handler-that-rearms-itself-inside-a-call", 0, "listen: %s", strerror(errno)); return; }
    rearm_runs = 0;
    sysv_signal(SIGALRM, on_rearm);
    struct itimerval tv = { .it_value = { .tv_usec = 100000 } };
    int rc[3], err[3];
    for (int i = 0; i < 3; i++) {
        setitimer(ITIMER_REAL, &tv, NULL);
        rc[i] = accept(l, NULL, NULL);
        err[i] = errno;
    }
    signal(SIGALRM, SIG_DFL);
    CHECK("a-handler-that-rearms-itself-inside-a-call",
          rc[0] == -1 && err[0] == EINTR && rc[1] == -1 && err[1] == EINTR && rc[2] == -1 && err[2] == EINTR && rearm_runs == 3,
          "accept %d (%s), %d (%s), %d (%s); handler ran %d times", rc[0], strerror(err[0]), rc[1], strerror(err[1]), rc[2], strerror(err[2]), (int)rearm_runs);
    close(l);
}

/* connect again on a socket whose connect is under way: a blocking call waits for the handshake
 * and returns 0, as the kernel's does after an EINPROGRESS (or after a blocking connect's EINTR),
 * and the next says EISCONN; the same after a non-blocking connect that poll saw complete. */
static void check_connect_again(void)
{
    socklen_t al = sizeof peer_addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r1 = connect(fd, (struct sockaddr *)&peer_addr, al), e1 = errno;
    fcntl(fd, F_SETFL, 0);
    int r2 = connect(fd, (struct sockaddr *)&peer_addr, al), e2 = errno;
    int r3 = connect(fd, (struct sockaddr *)&peer_addr, al), e3 = errno;
    int fd2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fd2, (struct sockaddr *)&peer_addr, al);
    struct pollfd p = { fd2, POLLOUT, 0 };
    poll(&p, 1, 5000);
    int r4 = connect(fd2, (struct sockaddr *)&peer_addr, al), e4 = errno;
    int r5 = connect(fd2, (struct sockaddr *)&peer_addr, al), e5 = errno;
    CHECK("connect-again-reports-the-handshake-once",
          r1 == -1 && e1 == EINPROGRESS && r2 == 0 && r3 == -1 && e3 == EISCONN && r4 == 0 && r5 == -1 && e5 == EISCONN,
          "blocking: %d (%s), %d (%s), %d (%s); non-blocking after poll: %d (%s), %d (%s)", r1, strerror(e1), r2, r2 ? strerror(e2) : "ok",
          r3, strerror(e3), r4, r4 ? strerror(e4) : "ok", r5, strerror(e5));
    close(fd); close(fd2);
}

static void check_half_close(void)
{
    int fd = connect_to(peer_addr, 'H');
    send(fd, "data", 4, 0);
    shutdown(fd, SHUT_WR);
    char buf[8] = { 0 };
    ssize_t n = read_full(fd, buf, 3);
    ssize_t eof = recv(fd, buf + 3, 1, 0);
    CHECK("shutdown-half-close", n == 3 && memcmp(buf, "bye", 3) == 0 && eof == 0, "read %zd '%s', then %zd", n, buf, eof);
    close(fd);
}

static void check_peek(void)
{
    int fd = connect_to(peer_addr, 'S');
    int avail = 0;
    for (int i = 0; i < 500 && avail < 5; i++) { ioctl(fd, FIONREAD, &avail); if (avail < 5) usleep(10000); }
    char a[8] = { 0 }, b[8] = { 0 };
    ssize_t p = recv(fd, a, 5, MSG_PEEK);
    ssize_t r = recv(fd, b, 5, 0);
    CHECK("msg-peek", avail == 5 && p == 5 && r == 5 && memcmp(a, "hello", 5) == 0 && memcmp(b, "hello", 5) == 0,
          "FIONREAD %d, peek %zd '%s', read %zd '%s'", avail, p, a, r, b);
    close(fd);
}

static void check_linger_rst(void)
{
    int fd = connect_to(peer_addr, 'L');
    send(fd, "x", 1, 0);
    usleep(50000);
    struct linger l = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
    usleep(200000);
    int q = connect_to(peer_addr, 'Q');
    char buf[8] = { 0 };
    read_full(q, buf, 3);
    CHECK("so-linger-zero-sends-rst", strcmp(buf, "RST") == 0, "the peer saw %s", buf);
    close(q);
}

static void check_select_high_fd(void)
{
    int fd = connect_to(peer_addr, 'E');
    int high = dup2(fd, 100);
    send(high, "ping", 4, 0);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(high, &r);
    struct timeval tv = { 5, 0 };
    int n = select(high + 1, &r, NULL, NULL, &tv);
    char buf[8] = { 0 };
    ssize_t got = n == 1 ? read_full(fd, buf, 4) : -1;
    CHECK("select-fd-above-64", high == 100 && n == 1 && FD_ISSET(high, &r) && got == 4 && memcmp(buf, "ping", 4) == 0,
          "dup2 %d, select %d, read %zd", high, n, got);
    close(high);
    close(fd);
}

static void check_dup2_onto_socket(void)
{
    int a = connect_to(peer_addr, 'E');
    int b = socket(AF_INET, SOCK_STREAM, 0);
    int r = dup2(a, b);
    send(b, "dup2", 4, 0);
    char buf[8] = { 0 };
    ssize_t got = read_full(a, buf, 4);
    CHECK("dup2-onto-socket", r == b && got == 4 && memcmp(buf, "dup2", 4) == 0, "dup2 %d, read %zd", r, got);
    close(b);
    close(a);
}

/* A socket closed with syscall(SYS_close), as libuv (Node.js) closes every socket: the peer sees
 * the bytes and a FIN, and the number, free again, names what the program opens next. */
static void check_close_by_syscall(void)
{
    int fd = connect_to(peer_addr, 'L');
    send(fd, "x", 1, 0);
    long closed = syscall(SYS_close, fd);
    int p[2];
    if (pipe(p) != 0) { CHECK("close-by-syscall", 0, "pipe"); return; }
    int again = p[0]; /* the lowest free number: fd's */
    ssize_t pw = write(p[1], "y", 1);
    char y = 0;
    ssize_t pr = read(again, &y, 1);
    usleep(200000);
    int q = connect_to(peer_addr, 'Q');
    char buf[8] = { 0 };
    read_full(q, buf, 3);
    CHECK("close-by-syscall", closed == 0 && strcmp(buf, "EOF") == 0 && again == fd && pw == 1 && pr == 1 && y == 'y',
          "syscall close %ld, the peer saw %s, the number again %d (was %d), pipe read %zd '%c'", closed, buf, again, fd, pr, y);
    close(q); close(p[0]); close(p[1]);
}

/* Checks of behaviour Netloom defines where the kernel's differs (docs/RUN.md). */
static int netloom(void) { return getenv("NETLOOM_ENGINE") != NULL; }

static void check_fork_exec(void)
{
    int fd = connect_to(peer_addr, 'E');
    pid_t pid = fork();
    if (pid == 0) { execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL); _exit(99); }
    int status = 0;
    waitpid(pid, &status, 0);
    send(fd, "after", 5, 0);
    char buf[8] = { 0 };
    ssize_t got = read_full(fd, buf, 5);
    CHECK("fork-then-exec", WIFEXITED(status) && WEXITSTATUS(status) == 7 && got == 5, "child status %d, parent read %zd", status, got);

    if (!netloom()) { printf("skip forked-child-gets-ebadf: the kernel lets a child share the socket\n"); close(fd); return; }
    pid = fork();
    if (pid == 0) {
        ssize_t s = send(fd, "x", 1, MSG_NOSIGNAL);
        _exit(s < 0 && errno == EBADF ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    send(fd, "still", 5, 0);
    got = read_full(fd, buf, 5);
    CHECK("forked-child-gets-ebadf", WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == 5, "child status %d, parent read %zd", status, got);
    close(fd);
}

static void *blocked_reader(void *arg)
{
    int fd = *(int *)arg;
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    *(int *)arg = r < 0 ? -errno : (int)r + 1000;
    return NULL;
}

static void check_close_while_blocked(void)
{
    if (!netloom()) { printf("skip close-while-another-thread-blocks: the kernel leaves the reader blocked\n"); return; }
    int fd = connect_to(peer_addr, 'W');
    int shared = fd;
    pthread_t t;
    pthread_create(&t, NULL, blocked_reader, &shared);
    usleep(200000);
    close(fd);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    int joined = pthread_timedjoin_np(t, NULL, &deadline);
    CHECK("close-while-another-thread-blocks", joined == 0, "the blocked recv did not return within 5 s (join %d)", joined);
}

static void check_reset_mid_transfer(void)
{
    int fd = connect_to(peer_addr, 'R');
    char buf[4096];
    ssize_t n, total = 0;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) total += n;
    int e = errno;
    CHECK("peer-resets-mid-transfer", n < 0 && e == ECONNRESET, "read %zd bytes, then %zd errno %d (%s)", total, n, e, strerror(e));
    close(fd);
}

static void check_emfile(void)
{
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &low);
    int fds[80], n = 0, e = 0;
    for (; n < 80; n++) {
        fds[n] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[n] < 0) { e = errno; break; }
    }
    for (int i = 0; i < n; i++) close(fds[i]);
    setrlimit(RLIMIT_NOFILE, &old);
    int again = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("emfile", e == EMFILE && again >= 0, "stopped after %d sockets with errno %d; a socket after: %d", n, e, again);
    close(again);
}

static void check_udp(void)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(u, "datagram", 8, 0, (struct sockaddr *)&peer_addr, sizeof peer_addr);
    struct pollfd p = { u, POLLIN, 0 };
    int pr = poll(&p, 1, 5000);
    char buf[16] = { 0 };
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    CHECK("udp-echo", pr == 1 && n == 8 && memcmp(buf, "datagram", 8) == 0 && from.sin_port == peer_addr.sin_port,
          "poll %d, recvfrom %zd", pr, n);
    close(u);
}

/* A connected UDP socket hears an ICMP port unreachable on its next call (ECONNREFUSED, with
 * POLLERR meanwhile), once; connect(AF_UNSPEC) then dissolves the association. */
static void check_udp_refused(void)
{
    struct sockaddr_in closed = peer_addr;
    closed.sin_port = htons(ntohs(peer_addr.sin_port) + 1); /* nothing listens there */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    int c = connect(u, (struct sockaddr *)&closed, sizeof closed);
    send(u, "knock", 5, 0);
    struct pollfd p = { u, POLLIN, 0 };
    int pr = poll(&p, 1, 5000);
    char buf[16];
    ssize_t n = recv(u, buf, sizeof buf, MSG_DONTWAIT);
    int e = errno;
    CHECK("udp-connected-refused", c == 0 && pr == 1 && (p.revents & POLLERR) && n < 0 && e == ECONNREFUSED,
          "connect %d, poll %d revents %#x, recv %zd errno %d (%s)", c, pr, p.revents, n, e, strerror(e));
    n = recv(u, buf, sizeof buf, MSG_DONTWAIT);
    e = errno;
    CHECK("udp-refused-once", n < 0 && e == EAGAIN, "second recv %zd errno %d (%s)", n, e, strerror(e));
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    c = connect(u, &unspec, sizeof unspec);
    sendto(u, "datagram", 8, 0, (struct sockaddr *)&peer_addr, sizeof peer_addr);
    struct pollfd q = { u, POLLIN, 0 };
    pr = poll(&q, 1, 5000);
    n = recv(u, buf, sizeof buf, MSG_DONTWAIT);
    CHECK("udp-disconnect", c == 0 && pr == 1 && n == 8, "connect(AF_UNSPEC) %d, poll %d, recv %zd", c, pr, n);
    close(u);
}

static void check_options(void)
{
    int fd = connect_to(peer_addr, 'W');
    int one = 1, v = 0, type = 0;
    socklen_t len = sizeof v;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len);
    len = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    struct tcp_info info;
    len = sizeof info;
    int ti = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
    int unknown = setsockopt(fd, SOL_SOCKET, 0x7777, &one, sizeof one);
    int unknown_errno = errno;
    CHECK("socket-options", v == 1 && type == SOCK_STREAM && ti == 0 && info.tcpi_state == 1 && unknown < 0 && unknown_errno == ENOPROTOOPT,
          "nodelay %d, type %d, tcp_info %d state %d, unknown option %d errno %d", v, type, ti, info.tcpi_state, unknown, unknown_errno);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: %s peer|check ADDR PORT\n", argv[0]); return 2; }
    peer_addr = addr_of(argv[2], atoi(argv[3]));
    if (strcmp(argv[1], "peer") == 0) return peer(peer_addr);
    signal(SIGPIPE, SIG_IGN);
    check_refused();
    check_eagain();
    check_epollet();
    check_epoll_mixed();
    check_epoll_mixed_wakes();
    check_epoll_add_wakes("epoll-add-to-an-empty-set-wakes-its-sleeper", 0, 1);
    check_epoll_add_wakes("epoll-add-to-a-kernel-only-set-wakes-its-sleeper", 1, 1);
    check_epoll_add_wakes("epoll-add-to-an-empty-set-wakes-both-its-sleepers", 0, 2);
    check_epoll_pwait2();
    check_eintr();
    check_sa_restart();
    check_connect_again();
    check_rearming_handler();
    check_half_close();
    check_peek();
    check_linger_rst();
    check_select_high_fd();
    check_dup2_onto_socket();
    check_close_by_syscall();
    check_fork_exec();
    check_close_while_blocked();
    check_reset_mid_transfer();
    check_emfile();
    check_udp();
    check_udp_refused();
    check_options();
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
