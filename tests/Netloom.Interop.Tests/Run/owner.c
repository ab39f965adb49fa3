/* What `netloom run --offload --single-issuer` (the owner mode) keeps, and what it says, checked
 * the way a threaded C server sees it. The main thread opens the first socket, so it owns the ring.
 *
 *   owner PORT      prints "ok NAME" or "FAIL NAME: why"; exits 1 if any failed
 */
#include "checks.h"
#include <poll.h>
#include <signal.h>

static unsigned char pattern(long long i) { return (unsigned char)(i * 7 + (i >> 11)); }

/* The next connection from the listener, waiting with epoll_wait as an event loop does (main thread). */
static int accept_one(int ep, int lfd)
{
    long long end = now_ms() + 10000;
    while (now_ms() < end) {
        struct epoll_event ev;
        epoll_wait(ep, &ev, 1, 100);
        int c = accept4(lfd, NULL, NULL, 0);
        if (c >= 0) return c;
    }
    fprintf(stderr, "no connection\n");
    exit(2);
}

/* ---- 1: threads other than the owner write whole replies and close ---- */

enum { Clients = 4, Reply = 1 << 20 };
static int done_clients, bad_clients;

static void *reading_client(void *arg)
{
    (void)arg;
    int fd = client();
    static __thread unsigned char buf[1 << 16];
    long long got = 0, bad = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) if (buf[i] != pattern(got + i)) bad++;
        got += n;
    }
    close(fd);
    if (got != Reply || bad) __atomic_add_fetch(&bad_clients, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&done_clients, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *writing_worker(void *arg)
{
    int c = (int)(long)arg;
    static __thread unsigned char chunk[1 << 15];
    for (long long sent = 0; sent < Reply;) {
        int n = sizeof chunk;
        for (int i = 0; i < n; i++) chunk[i] = pattern(sent + i);
        ssize_t w = send(c, chunk, (size_t)n, MSG_NOSIGNAL); /* blocking: waits when the queue is full */
        if (w <= 0) { perror("worker send"); break; }
        sent += w;
    }
    close(c); /* by this thread, with bytes still queued: the FIN follows them */
    return NULL;
}

static void check_other_threads_write_and_close(int ep, int lfd)
{
    pthread_t clients[Clients], workers[Clients];
    for (int i = 0; i < Clients; i++) pthread_create(&clients[i], NULL, reading_client, NULL);
    for (int i = 0; i < Clients; i++) pthread_create(&workers[i], NULL, writing_worker, (void *)(long)accept_one(ep, lfd));
    /* The owner goes on with its loop meanwhile, as a server's event loop does. */
    long long end = now_ms() + 60000;
    while (__atomic_load_n(&done_clients, __ATOMIC_SEQ_CST) < Clients && now_ms() < end) {
        struct epoll_event ev;
        epoll_wait(ep, &ev, 1, 50);
    }
    for (int i = 0; i < Clients; i++) pthread_join(workers[i], NULL);
    for (int i = 0; i < Clients; i++) pthread_join(clients[i], NULL);
    CHECK("other-threads-write-whole-replies-and-close", done_clients == Clients && bad_clients == 0,
          "%d of %d clients done, %d got a wrong or short reply", done_clients, Clients, bad_clients);
}

/* ---- 2: a reply the owner wrote leaves while it computes ---- */

static volatile int got_pong;
static void *pong_client(void *arg)
{
    int fd = *(int *)arg;
    char b[4];
    if (send(fd, "ping", 4, 0) == 4 && recv(fd, b, 4, MSG_WAITALL) == 4 && memcmp(b, "pong", 4) == 0) got_pong = 1;
    return NULL;
}

static void check_reply_leaves_while_owner_computes(int ep, int lfd)
{
    int cl = client();
    int c = accept_one(ep, lfd);
    pthread_t t;
    pthread_create(&t, NULL, pong_client, &cl);
    char b[4];
    ssize_t n = recv(c, b, 4, MSG_WAITALL);
    ssize_t w = send(c, "pong", 4, 0);
    /* No call into the interposer from here until the client has its reply (or 10 s passed). */
    long long end = now_ms() + 10000;
    while (!got_pong && now_ms() < end) { }
    int seen = got_pong;
    pthread_join(t, NULL);
    CHECK("a-reply-leaves-while-the-owner-computes", n == 4 && w == 4 && seen, "recv %zd, send %zd, client got pong while the owner computed: %d", n, w, seen);
    close(c); close(cl);
}

/* ---- 3: a thread that waits on an owner gone elsewhere: said on stderr, and nothing lost ---- */

static int waiter_fd, waiter_result = -2;
static void *waiting_worker(void *arg)
{
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = waiter_fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, waiter_fd, &ev);
    waiter_result = epoll_wait(ep, &ev, 1, 2500);
    close(ep);
    return NULL;
}

static void check_absent_owner(int ep, int lfd)
{
    int cl = client();
    waiter_fd = accept_one(ep, lfd);
    struct epoll_event ev;
    epoll_wait(ep, &ev, 1, 0); /* the connection's receive goes into the ring */
    if (send(cl, "late", 4, 0) != 4) perror("send");
    pthread_t t;
    pthread_create(&t, NULL, waiting_worker, NULL);
    pthread_join(t, NULL); /* the owner waits here, away from the ring */
    /* Back in the engine: the bytes the absent owner could not take are all there. */
    char b[4] = { 0 };
    ssize_t n = recv(waiter_fd, b, 4, MSG_WAITALL);
    CHECK("an-absent-owner-loses-nothing", (waiter_result == 0 || waiter_result == 1) && n == 4 && memcmp(b, "late", 4) == 0,
          "the waiting thread's epoll_wait gave %d, then the owner's recv %zd '%.4s'", waiter_result, n, b);
    printf("waiter saw %d\n", waiter_result);
    close(waiter_fd); close(cl);
}

/* ---- 4: an owner asleep in poll() (a pipe beside an offloaded socket) is woken for another thread's send ---- */

static int hello_conn;
static void *hello_worker(void *arg)
{
    (void)arg;
    usleep(100000); /* the owner is asleep in poll by now */
    if (send(hello_conn, "hi", 2, 0) != 2) perror("worker send");
    return NULL;
}

static void *echo_client(void *arg)
{
    int fd = *(int *)arg;
    char b[2];
    if (recv(fd, b, 2, MSG_WAITALL) == 2 && memcmp(b, "hi", 2) == 0) send(fd, "ok", 2, 0);
    return NULL;
}

static void check_owner_in_poll(int ep, int lfd)
{
    int cl = client();
    hello_conn = accept_one(ep, lfd);
    int p[2];
    if (pipe(p) != 0) perror("pipe");
    pthread_t w, e;
    pthread_create(&e, NULL, echo_client, &cl);
    pthread_create(&w, NULL, hello_worker, NULL);
    struct pollfd fds[2] = { { .fd = p[0], .events = POLLIN }, { .fd = hello_conn, .events = POLLIN } };
    int n = poll(fds, 2, 10000); /* the reply "ok" can only come once the worker's "hi" went out */
    char b[2] = { 0 };
    ssize_t r = n == 1 && (fds[1].revents & POLLIN) ? recv(hello_conn, b, 2, MSG_WAITALL) : -1;
    pthread_join(w, NULL);
    pthread_join(e, NULL);
    CHECK("an-owner-asleep-in-poll-is-woken-for-another-threads-send", n == 1 && r == 2 && memcmp(b, "ok", 2) == 0,
          "poll gave %d (socket revents 0x%x), recv %zd", n, fds[1].revents, r);
    close(p[0]); close(p[1]); close(hello_conn); close(cl);
}

/* ---- 5: a listener another thread closes stops listening, though the owner is away ---- */

static int closing_listener, connect_errno = -1;
static struct sockaddr_in second;
static void *closing_worker(void *arg)
{
    (void)arg;
    close(closing_listener);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    connect_errno = connect(fd, (struct sockaddr *)&second, sizeof second) == 0 ? 0 : errno;
    close(fd);
    return NULL;
}

static void check_listener_closed_by_another_thread(int ep)
{
    second = addr;
    second.sin_port = htons((unsigned short)(ntohs(addr.sin_port) + 1));
    closing_listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(closing_listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(closing_listener, (struct sockaddr *)&second, sizeof second) != 0 || listen(closing_listener, 8) != 0) { perror("second listener"); exit(2); }
    struct epoll_event ev;
    epoll_wait(ep, &ev, 1, 0); /* its accept goes into the ring */
    pthread_t t;
    pthread_create(&t, NULL, closing_worker, NULL);
    pthread_join(t, NULL); /* the owner is away meanwhile */
    CHECK("a-listener-another-thread-closes-stops-listening", connect_errno == ECONNREFUSED, "connect after the close: %s", connect_errno ? strerror(connect_errno) : "connected");
}

/* ---- 6: a thread other than the owner, asleep in epoll_wait, is interrupted by a signal (EINTR) ---- */

static void on_usr1(int s) { (void)s; }
static int intr_conn, intr_result = -2, intr_errno;
static void *interrupted_waiter(void *arg)
{
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = intr_conn };
    epoll_ctl(ep, EPOLL_CTL_ADD, intr_conn, &ev);
    intr_result = epoll_wait(ep, &ev, 1, 5000); /* nothing arrives: only the signal ends it early */
    intr_errno = errno;
    close(ep);
    return NULL;
}

static void check_signal_interrupts_another_threads_wait(int ep, int lfd)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    int cl = client();
    intr_conn = accept_one(ep, lfd);
    pthread_t t;
    pthread_create(&t, NULL, interrupted_waiter, NULL);
    usleep(300000);
    long long t0 = now_ms();
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    long long after = now_ms() - t0;
    CHECK("a-signal-ends-another-threads-epoll-wait-with-eintr", intr_result == -1 && intr_errno == EINTR,
          "epoll_wait gave %d (%s) %lld ms after the signal", intr_result, strerror(intr_errno), after);
    close(intr_conn); close(cl);
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: owner PORT\n"); return 2; }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0); /* the first socket: this thread owns the ring */
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 64) != 0) { perror("listen"); return 2; }
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    check_other_threads_write_and_close(ep, lfd);
    check_reply_leaves_while_owner_computes(ep, lfd);
    check_absent_owner(ep, lfd);
    check_owner_in_poll(ep, lfd);
    check_listener_closed_by_another_thread(ep);
    check_signal_interrupts_another_threads_wait(ep, lfd);
    close(ep); close(lfd);
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
