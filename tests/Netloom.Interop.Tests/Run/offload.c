/* What `netloom run --offload` must keep, checked the way an epoll server written in C sees it.
 *
 *   offload PORT    server sockets on 127.0.0.1:PORT (offloaded when run under --offload), with
 *                   client threads on plain kernel sockets; prints "ok NAME" or "FAIL NAME: why"
 */
#include "checks.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>

/* Accepts one connection from the non-blocking listener, waiting in epoll. */
static int accept_one(int ep, int lfd)
{
    struct epoll_event ev;
    for (int i = 0; i < 500; i++) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c >= 0) return c;
        if (errno != EAGAIN) { perror("accept4"); return -1; }
        epoll_wait(ep, &ev, 1, 10);
    }
    return -1;
}

static unsigned char pattern(long long i) { return (unsigned char)(i * 7 + (i >> 9)); }

struct late { int fd; int ms; };
static void *write_late(void *arg)
{
    struct late *l = arg;
    usleep(l->ms * 1000);
    uint64_t one = 1;
    if (write(l->fd, &one, 8) != 8) perror("write");
    return NULL;
}

/* One epoll set: the offloaded listener and connection beside a timerfd, an eventfd and a pipe. */
static void check_mixed(int lfd)
{
    int ep = epoll_create1(0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = { .it_value = { .tv_nsec = 100 * 1000000 } };
    timerfd_settime(tfd, 0, &its, NULL);
    int efd = eventfd(0, EFD_NONBLOCK);
    int p[2];
    if (pipe2(p, O_NONBLOCK) != 0) { CHECK("epoll-mixed-with-timerfd-eventfd-pipe", 0, "pipe"); return; }
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.u32 = 1; epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.u32 = 2; epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    ev.data.u32 = 3; epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    ev.data.u32 = 4; epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct late e1 = { efd, 50 }, p1 = { p[1], 150 };
    pthread_t t1, t2;
    pthread_create(&t1, NULL, write_late, &e1);
    pthread_create(&t2, NULL, write_late, &p1);
    int cl = client();
    int conn = -1, seen = 0, echoed = 0;
    long long end = now_ms() + 5000;
    char buf[64];
    if (send(cl, "hello", 5, 0) != 5) perror("send");
    while (now_ms() < end && (seen != 0x3e || !echoed)) {
        struct epoll_event out[8];
        int n = epoll_wait(ep, out, 8, 1000);
        for (int i = 0; i < n; i++) {
            uint32_t d = out[i].data.u32;
            seen |= 1 << d;
            if (d == 1) {
                conn = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (conn >= 0) { struct epoll_event c = { .events = EPOLLIN, .data.u32 = 5 }; epoll_ctl(ep, EPOLL_CTL_ADD, conn, &c); }
            } else if (d == 2) { uint64_t v; if (read(tfd, &v, 8) < 0) perror("timerfd"); }
            else if (d == 3) { uint64_t v; if (read(efd, &v, 8) < 0) perror("eventfd"); }
            else if (d == 4) { if (read(p[0], buf, sizeof buf) < 0) perror("pipe"); }
            else if (d == 5) {
                ssize_t r = recv(conn, buf, sizeof buf, 0);
                if (r > 0 && send(conn, buf, (size_t)r, 0) == r) {
                    char back[8] = { 0 };
                    ssize_t g = recv(cl, back, 5, MSG_WAITALL);
                    echoed = g == 5 && memcmp(back, "hello", 5) == 0;
                }
            }
        }
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK("epoll-mixed-with-timerfd-eventfd-pipe", seen == 0x3e && echoed,
          "seen 0x%x (want 0x3e: listener, timerfd, eventfd, pipe, connection), echoed %d", seen, echoed);
    close(cl); close(conn); close(tfd); close(efd); close(p[0]); close(p[1]); close(ep);
}

struct reader { int fd; long long want, got, bad; int delay_ms; };
static void *read_all(void *arg)
{
    struct reader *r = arg;
    usleep(r->delay_ms * 1000);
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = recv(r->fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) if ((unsigned char)buf[i] != pattern(r->got + i)) r->bad++;
        r->got += n;
    }
    return NULL;
}

/* A reader that does not read: writes stop with EAGAIN (memory bounded), go on at EPOLLOUT, and every byte arrives in order. */
static void check_slow_reader(int ep, int lfd)
{
    int cl = client();
    int c = accept_one(ep, lfd);
    const long long total = 32LL << 20;
    static unsigned char chunk[1 << 16];
    long long sent = 0, at_eagain = -1;
    struct reader r = { cl, total, 0, 0, 300 };
    pthread_t t;
    pthread_create(&t, NULL, read_all, &r);
    int cep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.u32 = 9 };
    epoll_ctl(cep, EPOLL_CTL_ADD, c, &ev);
    long long end = now_ms() + 30000;
    while (sent < total && now_ms() < end) {
        int n = (int)(total - sent < (long long)sizeof chunk ? total - sent : (long long)sizeof chunk);
        for (int i = 0; i < n; i++) chunk[i] = pattern(sent + i);
        ssize_t w = send(c, chunk, (size_t)n, MSG_NOSIGNAL);
        if (w > 0) { sent += w; continue; }
        if (w < 0 && errno == EAGAIN) {
            if (at_eagain < 0) at_eagain = sent;
            struct epoll_event out;
            epoll_wait(cep, &out, 1, 1000);
            continue;
        }
        break;
    }
    close(c); /* the last bytes are still queued: the FIN follows them */
    pthread_join(t, NULL);
    CHECK("slow-reader-bounded-then-drained", at_eagain > 0 && at_eagain < (16LL << 20) && sent == total && r.got == total && r.bad == 0,
          "first EAGAIN after %lld bytes, sent %lld, received %lld of %lld, %lld wrong", at_eagain, sent, r.got, total, r.bad);
    close(cl); close(cep);
}

/* A peer that resets while the server writes: a later write reports it (EPIPE or ECONNRESET), no crash, no SIGPIPE with MSG_NOSIGNAL. */
static void check_reset_mid_reply(int ep, int lfd)
{
    int cl = client();
    int c = accept_one(ep, lfd);
    struct linger lg = { 1, 0 };
    setsockopt(cl, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(cl); /* RST */
    static char chunk[1 << 14];
    int err = 0;
    long long end = now_ms() + 5000;
    while (!err && now_ms() < end) {
        ssize_t w = send(c, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) err = errno;
        else if (w < 0) { struct epoll_event out; epoll_wait(ep, &out, 1, 10); }
        else usleep(1000);
    }
    int soerr = -1;
    socklen_t sl = sizeof soerr;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    CHECK("peer-reset-surfaces-on-a-later-write", err == EPIPE || err == ECONNRESET, "write error %s", strerror(err));
    close(c);
}

/* An accepted socket left blocking: recv with MSG_WAITALL waits for all the data (two segments,
 * 100 and 150 ms later); then a write, and the FIN after it. */
static void *send_late(void *arg)
{
    usleep(100000);
    if (send(*(int *)arg, "la", 2, 0) != 2) perror("send");
    usleep(50000); /* a second segment: MSG_WAITALL must wait for it */
    if (send(*(int *)arg, "te!", 3, 0) != 3) perror("send");
    return NULL;
}

static void check_blocking(int lfd)
{
    int cl = client();
    int c = -1;
    for (int i = 0; i < 500 && c < 0; i++) { c = accept(lfd, NULL, NULL); if (c < 0) usleep(10000); }
    pthread_t t;
    pthread_create(&t, NULL, send_late, &cl);
    char buf[8] = { 0 };
    long long t0 = now_ms();
    ssize_t n = recv(c, buf, 5, MSG_WAITALL);
    long long waited = now_ms() - t0;
    pthread_join(t, NULL);
    ssize_t w = write(c, "back", 4);
    char back[8] = { 0 };
    ssize_t g = recv(cl, back, 4, MSG_WAITALL);
    shutdown(c, SHUT_WR);
    ssize_t eof = recv(cl, back, 1, 0);
    CHECK("blocking-recv-waits-then-write-and-fin", n == 5 && memcmp(buf, "late!", 5) == 0 && waited >= 120 && w == 4 && g == 4 && memcmp(back, "back", 4) == 0 && eof == 0,
          "recv %zd '%s' after %lld ms, write %zd, peer got %zd, then %zd", n, buf, waited, w, g, eof);
    close(c); close(cl);
}

/* sendfile behind bytes still queued, then close of the file: under --offload both go into the
 * ring (a read into the send queue, a queued close). The peer gets the bytes in order; a dup2
 * onto the file's number right after the close keeps the new descriptor (the queued close goes in
 * first); a file shorter than the count asked for never lets a wrong byte follow. */
/* A connection closed with syscall(SYS_close), as libuv (Node.js) closes every socket: its queued
 * bytes and FIN still reach the peer, and the number, free again, names whatever the program
 * opens next (here a pipe's read end), whose reads the engine must leave to the kernel. */
static void check_close_by_syscall(int ep, int lfd)
{
    int cl = client();
    int c = accept_one(ep, lfd);
    struct timeval tv = { 5, 0 };
    setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t s = send(c, "queued", 6, 0);
    long closed = syscall(SYS_close, c);
    char got[8] = { 0 };
    ssize_t g = recv(cl, got, 6, MSG_WAITALL), eof = recv(cl, got + 6, 1, 0);
    int p[2];
    if (pipe(p) != 0) { CHECK("a-socket-closed-by-syscall-sends-its-bytes-and-frees-its-number", 0, "pipe"); return; }
    int again = p[0]; /* the lowest free number: c's */
    ssize_t pw = write(p[1], "x", 1);
    char x = 0;
    ssize_t pr = read(again, &x, 1);
    CHECK("a-socket-closed-by-syscall-sends-its-bytes-and-frees-its-number",
          s == 6 && closed == 0 && g == 6 && memcmp(got, "queued", 6) == 0 && eof == 0 && again == c && pw == 1 && pr == 1 && x == 'x',
          "send %zd, syscall close %ld, peer got %zd then %zd, the number again %d (was %d), pipe read %zd '%c'", s, closed, g, eof, again, c, pr, x);
    close(p[0]); close(p[1]); close(cl);
}

/* A connection's duplicate outlives the name it was accepted under (dup, then close the
 * original, as a daemon hands a socket to stdin/stdout): what is sent through the duplicate
 * reaches the peer, and closing it sends the FIN. */
static void check_dup_outlives_original(int ep, int lfd)
{
    int cl = client();
    int c = accept_one(ep, lfd);
    struct timeval tv = { 5, 0 };
    setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int d = dup(c);
    close(c);
    ssize_t s = send(d, "after", 5, 0);
    char got[8] = { 0 };
    ssize_t g = recv(cl, got, 5, MSG_WAITALL);
    close(d);
    ssize_t eof = recv(cl, got + 5, 1, 0);
    CHECK("a-dup-outlives-the-name-it-was-accepted-under", d >= 0 && s == 5 && g == 5 && memcmp(got, "after", 5) == 0 && eof == 0,
          "dup %d, send %zd, peer got %zd '%s' then %zd", d, s, g, got, eof);
    close(cl);
}

static void check_sendfile_then_close(int ep, int lfd)
{
    char path[] = "/tmp/netloom-offload-XXXXXX";
    int tmp = mkstemp(path);
    static unsigned char body[3000], got[8192];
    for (int i = 0; i < 3000; i++) body[i] = pattern(i + 11);
    if (tmp < 0 || write(tmp, body, sizeof body) != (ssize_t)sizeof body) { CHECK("sendfile-behind-queued-bytes-close-and-dup2", 0, "temp file"); return; }
    close(tmp);
    int cl = client();
    int c = accept_one(ep, lfd);
    ssize_t h = send(c, "HEAD", 4, 0);
    int fd = open(path, O_RDONLY);
    off_t off = 0;
    ssize_t r = sendfile(c, fd, &off, sizeof body);
    close(fd);
    int p[2];
    if (pipe(p) != 0) perror("pipe");
    int d = dup2(p[0], fd); /* fd's number, just closed: now the pipe's read end */
    struct epoll_event ev;
    epoll_wait(ep, &ev, 1, 0); /* a round of the ring: whatever is queued goes in */
    usleep(20000);
    epoll_wait(ep, &ev, 1, 0);
    ssize_t pw = write(p[1], "x", 1);
    char x = 0;
    ssize_t pr = read(fd, &x, 1);
    ssize_t g = recv(cl, got, 4 + sizeof body, MSG_WAITALL);
    CHECK("sendfile-behind-queued-bytes-close-and-dup2",
          h == 4 && r == (ssize_t)sizeof body && off == (off_t)sizeof body && d == fd && pw == 1 && pr == 1 && x == 'x'
          && g == 4 + (ssize_t)sizeof body && memcmp(got, "HEAD", 4) == 0 && memcmp(got + 4, body, sizeof body) == 0,
          "send %zd, sendfile %zd (offset %lld), dup2 %d onto %d, pipe write %zd read %zd '%c', peer got %zd", h, r, (long long)off, d, fd, pw, pr, x, g);
    close(p[0]); close(p[1]); close(c); close(cl);

    /* Asking for more than the file holds, behind queued bytes. */
    cl = client();
    c = accept_one(ep, lfd);
    h = send(c, "X", 1, 0);
    fd = open(path, O_RDONLY);
    off = 0;
    r = sendfile(c, fd, &off, 5000);
    close(fd);
    ssize_t total = 0, k;
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (r == 5000) shutdown(c, SHUT_WR); /* a server would end the reply here */
    else close(c);
    while ((k = recv(cl, got + total, sizeof got - (size_t)total, 0)) > 0) total += k;
    /* The kernel says 3000; the offload engine said 5000 and then ends the connection with no
     * byte after the file's last: either way the peer never gets more than the file holds. */
    int kernel_way = r == 3000 && total == 3001;
    int offload_way = r == 5000 && total <= 3001 && (k == 0 || errno == ECONNRESET);
    CHECK("sendfile-past-the-end-of-a-file-never-sends-a-wrong-byte", h == 1 && (kernel_way || offload_way) && memcmp(got, "X", 1) == 0,
          "sendfile %zd, peer got %zd then %zd (errno %d)", r, total, k, errno);
    if (r == 5000) close(c);
    close(cl);
    unlink(path);
}

/* Signals. Handlers count the alarms; the siginfo one checks what it was given. */
static volatile sig_atomic_t alarms, alarm_info_ok;
static void on_alarm_info(int sig, siginfo_t *info, void *context)
{
    (void)context;
    alarms++;
    if (sig == SIGALRM && info && info->si_signo == SIGALRM) alarm_info_ok = 1;
}
static void on_alarm(int sig) { (void)sig; alarms++; }
static void alarm_in_ms(int ms)
{
    struct itimerval it = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A handler that runs while epoll_wait sleeps ends it with EINTR (epoll_wait is never restarted,
 * SA_RESTART or not), with the siginfo the kernel gave, and sigaction and signal report the
 * program's own handlers back (under --offload the interposer runs them through a trampoline
 * that counts them, so that a wait whose io_uring_enter also submitted, which returns the count
 * it submitted rather than EINTR, still ends with EINTR). Each round waits on a connection just
 * accepted, whose client sends nothing. */
static void check_signal_ends_epoll_wait(int ep, int lfd)
{
    struct sigaction sa, seen;
    memset(&sa, 0, sizeof sa);
    memset(&seen, 0, sizeof seen);
    sa.sa_sigaction = on_alarm_info;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGALRM, NULL, &seen);
    int reported = seen.sa_sigaction == on_alarm_info && (seen.sa_flags & SA_SIGINFO) != 0;
    int rc[2], err[2];
    alarms = 0;
    for (int round = 0; round < 2; round++) {
        if (round == 1) reported &= signal(SIGALRM, on_alarm) == (sighandler_t)(void *)on_alarm_info; /* BSD signal: SA_RESTART */
        int cl = client();
        alarm_in_ms(200);
        int c = accept_one(ep, lfd);
        int ep2 = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN }, out;
        epoll_ctl(ep2, EPOLL_CTL_ADD, c, &ev);
        rc[round] = epoll_wait(ep2, &out, 1, 5000);
        err[round] = errno;
        close(ep2); close(c); close(cl);
    }
    reported &= signal(SIGALRM, SIG_DFL) == on_alarm;
    CHECK("a-signal-ends-epoll-wait-and-handlers-read-back-as-set",
          rc[0] == -1 && err[0] == EINTR && rc[1] == -1 && err[1] == EINTR && alarms == 2 && alarm_info_ok && reported,
          "epoll_wait %d (%s) then %d (%s), %d alarms, siginfo %s, handlers reported back %s",
          rc[0], strerror(err[0]), rc[1], strerror(err[1]), (int)alarms, alarm_info_ok ? "right" : "wrong", reported ? "right" : "wrong");
}

/* Sends "later" 300 ms on, with SIGALRM blocked: the alarm goes to the thread in recv. */
static void *send_later(void *arg)
{
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    usleep(300000);
    if (send(*(int *)arg, "later", 5, 0) != 5) perror("send");
    return NULL;
}

/* A blocking recv (no SO_RCVTIMEO) goes on waiting after a handler installed with SA_RESTART,
 * as the kernel restarts it, and ends with EINTR after one installed without. */
static void check_restart(int blfd)
{
    int cl = client();
    int c = -1;
    for (int i = 0; i < 500 && c < 0; i++) { c = accept(blfd, NULL, NULL); if (c < 0) usleep(10000); }
    alarms = 0;
    signal(SIGALRM, on_alarm); /* SA_RESTART */
    pthread_t t;
    pthread_create(&t, NULL, send_later, &cl);
    alarm_in_ms(100);
    char buf[8] = { 0 };
    ssize_t n = recv(c, buf, 5, MSG_WAITALL);
    pthread_join(t, NULL);
    int after_restart = (int)alarms;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm_in_ms(100);
    char more;
    ssize_t m = recv(c, &more, 1, 0);
    int e = errno;
    signal(SIGALRM, SIG_DFL);
    CHECK("a-blocking-recv-restarts-after-an-sa-restart-handler-only",
          n == 5 && memcmp(buf, "later", 5) == 0 && after_restart == 1 && m == -1 && e == EINTR && alarms == 2,
          "recv %zd '%s' after %d alarm(s); then recv %zd (%s) after %d", n, buf, after_restart, m, strerror(e), (int)alarms);
    close(c); close(cl);
}

/* A dispatcher adds a connection that already has bytes to the epoll set a worker thread sleeps
 * on (a thread-pool server's pattern): the worker wakes, as the kernel's epoll wakes it, and does
 * not wait for some unrelated completion (it used to sleep out its whole timeout). With an idle
 * offloaded connection in the worker's set its wait is the engine's; without, the kernel's. */
struct worker { int ep; int got; };
static void *worker_wait(void *arg)
{
    struct worker *w = arg;
    struct epoll_event ev;
    w->got = epoll_wait(w->ep, &ev, 1, 30000);
    return NULL;
}

static void check_dispatch_to_a_sleeping_worker(int ep, int lfd, const char *name, int with_idle)
{
    int idle_client = with_idle ? client() : -1;
    int idle = with_idle ? accept_one(ep, lfd) : -1;
    int cl = client();
    if (write(cl, "hello", 5) != 5) perror("write");
    int c = accept_one(ep, lfd);
    struct worker w = { .ep = epoll_create1(0), .got = -2 };
    struct epoll_event iev = { .events = EPOLLIN, .data.fd = idle };
    if (with_idle) epoll_ctl(w.ep, EPOLL_CTL_ADD, idle, &iev);
    pthread_t t;
    pthread_create(&t, NULL, worker_wait, &w);
    usleep(200 * 1000); /* the worker is asleep, the bytes have come */
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
    epoll_ctl(w.ep, EPOLL_CTL_ADD, c, &ev);
    /* Woken by the add, not by its 30 s timeout (which would also find the bytes): 5 s is a hang. */
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 5;
    int woken = pthread_timedjoin_np(t, NULL, &limit) == 0;
    if (!woken) pthread_join(t, NULL);
    char b[8];
    ssize_t n = read(c, b, sizeof b);
    CHECK(name, woken && w.got == 1 && n == 5,
          "%s; epoll_wait returned %d, read %zd", woken ? "woken" : "still asleep 5 s after the add", w.got, n);
    close(w.ep); close(c); close(cl);
    if (with_idle) { close(idle); close(idle_client); }
}

/* poll() over an offloaded connection and a pipe, while another thread keeps taking the ring's
 * completions (its epoll loop): the bytes that arrive wake the poll, though the completion that
 * brought them was that thread's to take. */
struct reaper { int ep; volatile int stop; };
static void *reap_busily(void *arg)
{
    struct reaper *r = arg;
    struct epoll_event ev;
    while (!r->stop) epoll_wait(r->ep, &ev, 1, 0);
    return NULL;
}

struct sender { int fd; int ms; };
static void *send_after(void *arg)
{
    struct sender *s = arg;
    usleep(s->ms * 1000);
    if (write(s->fd, "later", 5) != 5) perror("write");
    return NULL;
}

static void check_poll_beside_a_reaping_thread(int ep, int lfd)
{
    int idle_client = client();
    int idle = accept_one(ep, lfd);
    int cl = client();
    int c = accept_one(ep, lfd);
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return; }
    struct reaper r = { .ep = epoll_create1(0), .stop = 0 };
    struct epoll_event iev = { .events = EPOLLIN, .data.fd = idle };
    epoll_ctl(r.ep, EPOLL_CTL_ADD, idle, &iev);
    pthread_t rt, st;
    pthread_create(&rt, NULL, reap_busily, &r);
    int woken = 0, rounds = 20;
    for (int i = 0; i < rounds; i++) {
        struct sender s = { .fd = cl, .ms = 100 };
        pthread_create(&st, NULL, send_after, &s);
        struct pollfd pf[2] = { { .fd = p[0], .events = POLLIN }, { .fd = c, .events = POLLIN } };
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int n = poll(pf, 2, 5000);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        pthread_join(st, NULL);
        char b[8];
        ssize_t got = recv(c, b, sizeof b, MSG_DONTWAIT);
        /* 5 s is the timeout: a poll that returns only then slept through the bytes. */
        if (n == 1 && (pf[1].revents & POLLIN) && got == 5 && ms < 4000) woken++;
        else printf("# round %d: poll %d (revents %#x) after %ld ms, recv %zd\n", i, n, pf[1].revents, ms, got);
    }
    r.stop = 1;
    pthread_join(rt, NULL);
    CHECK("a-poll-wakes-for-bytes-another-thread-reaped", woken == rounds, "%d of %d polls woke for the bytes", woken, rounds);
    close(r.ep); close(c); close(cl); close(idle); close(idle_client); close(p[0]); close(p[1]);
}

/* A close behind many receive completions waiting for the owner: in the owner mode they are
 * task work, run a bounded batch per entry into the ring, and the close's cancellation queues
 * behind them; the FIN must not wait for the owner's next wait however many come first. */
#define BEHIND 100
static void check_close_behind_many_completions(int ep, int lfd)
{
    int cl[BEHIND], sv[BEHIND], n = 0;
    for (; n < BEHIND; n++) {
        cl[n] = client();
        sv[n] = accept_one(ep, lfd);
        if (sv[n] < 0) { close(cl[n]); break; }
    }
    struct epoll_event ev;
    epoll_wait(ep, &ev, 1, 0); /* the receives are armed */
    usleep(100000);
    epoll_wait(ep, &ev, 1, 0);
    for (int i = 1; i < n; i++) (void)!write(cl[i], "x", 1); /* each one a completion for the owner */
    usleep(100000);
    struct timeval tv = { 5, 0 };
    setsockopt(cl[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    close(sv[0]);
    char b;
    ssize_t eof = recv(cl[0], &b, 1, 0); /* the owner blocks in the kernel */
    CHECK("a-close-behind-many-waiting-completions-sends-its-fin", n == BEHIND && eof == 0,
          "%d of %d connections, the peer's read after the close %zd", n, BEHIND, eof);
    for (int i = 0; i < n; i++) { if (i > 0) close(sv[i]); close(cl[i]); }
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s PORT\n", argv[0]); return 2; }
    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 64) != 0) { perror("listen"); return 2; }
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 1 };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    check_mixed(lfd);
    check_slow_reader(ep, lfd);
    check_reset_mid_reply(ep, lfd);
    check_sendfile_then_close(ep, lfd);
    check_close_by_syscall(ep, lfd);
    check_signal_ends_epoll_wait(ep, lfd);
    /* In the owner mode only the thread that opened the first socket runs completions: another
     * thread's wait is served when it calls (owner.c checks that mode's own promises). */
    const char *owner_mode = getenv("NETLOOM_SINGLE_ISSUER");
    if (!owner_mode || strcmp(owner_mode, "1") != 0) {
        check_dispatch_to_a_sleeping_worker(ep, lfd, "a-connection-added-to-a-sleeping-workers-set-wakes-it", 1);
        /* The worker's set is empty when its wait begins, so that wait is the kernel's. */
        check_dispatch_to_a_sleeping_worker(ep, lfd, "a-connection-added-to-a-workers-empty-set-wakes-it", 0);
        check_poll_beside_a_reaping_thread(ep, lfd);
    }
    /* In the owner mode too: there the close's entry into the ring runs the cancelled receive's
     * task work, so its hold on the socket goes before this owner blocks in the kernel. */
    check_dup_outlives_original(ep, lfd);
    check_close_behind_many_completions(ep, lfd);
    /* The blocking check uses a blocking listener. */
    int blfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(blfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_port = htons((unsigned short)(atoi(argv[1]) + 1));
    if (bind(blfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(blfd, 8) != 0) { perror("listen"); return 2; }
    check_blocking(blfd);
    check_restart(blfd);
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
