/* MSG_ZEROCOPY as a program uses it, written from the kernel's Documentation/networking/
 * msg_zerocopy.rst and socket(7)/ip(7): SO_ZEROCOPY, send with MSG_ZEROCOPY, completions read
 * with recvmsg(MSG_ERRQUEUE) as a sock_extended_err (SO_EE_ORIGIN_ZEROCOPY, the range of send
 * numbers in ee_info..ee_data, SO_EE_CODE_ZEROCOPY_COPIED) and POLLERR readiness.
 *
 *   zerocopy peer IP PORT                 TCP: per connection, reads to EOF and answers with the
 *                                         byte count and an FNV-1a digest; UDP on the same port: counts
 *   zerocopy check IP PORT [expect-zc]    the checks, "ok NAME" or "FAIL NAME: why", then "N failed";
 *                                         expect-zc: large sends must complete without the copied code
 *   zerocopy exit-outstanding IP PORT     sends 4 MiB with MSG_ZEROCOPY and exits without waiting
 *   zerocopy serve-zc IP PORT             a server: SO_ZEROCOPY on the listener (accepted sockets
 *                                         inherit it), one client, 200 x 64 KiB sends with
 *                                         MSG_ZEROCOPY, every completion read; prints the digest
 *   zerocopy serve-zc-msg IP PORT         the same with sendmsg and two iovecs per send
 *   zerocopy fetch IP PORT                the client for serve-zc: reads to EOF, prints the digest
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/errqueue.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

#define WRITE (64 * 1024)
#define NBUF 16
#define SENDS 200

static int failed;
static const char *ip;
static int port;

static void ok(const char *name) { printf("ok %s\n", name); fflush(stdout); }
static void fail(const char *name, const char *why) { printf("FAIL %s: %s (errno %d %s)\n", name, why, errno, strerror(errno)); fflush(stdout); failed++; }

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

static struct sockaddr_in addr(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int tcp_connect(int zerocopy)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (zerocopy && setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one)) return -1;
    struct sockaddr_in a = addr();
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { close(fd); return -1; }
    return fd;
}

/* One completion from the error queue ("Notification Parsing" in msg_zerocopy.rst):
 * 1 with lo/hi/code set, 0 when the queue is empty (EAGAIN), -1 on anything unexpected. */
static int read_completion(int fd, uint32_t *lo, uint32_t *hi, int *code, const char **why)
{
    char control[100];
    struct msghdr m = { 0 };
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    if (recvmsg(fd, &m, MSG_ERRQUEUE) == -1) {
        if (errno == EAGAIN) return 0;
        *why = "recvmsg(MSG_ERRQUEUE) failed";
        return -1;
    }
    if (!(m.msg_flags & MSG_ERRQUEUE)) { *why = "msg_flags lacks MSG_ERRQUEUE"; return -1; }
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    if (!cm) { *why = "no control message"; return -1; }
    if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) || (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR))) {
        *why = "control message is not IP_RECVERR";
        return -1;
    }
    struct sock_extended_err *e = (struct sock_extended_err *)CMSG_DATA(cm);
    if (e->ee_errno != 0 || e->ee_origin != SO_EE_ORIGIN_ZEROCOPY) { *why = "ee_errno is not 0 or ee_origin is not SO_EE_ORIGIN_ZEROCOPY"; return -1; }
    *lo = e->ee_info;
    *hi = e->ee_data;
    *code = e->ee_code;
    return 1;
}

/* Waits for POLLERR (requested events 0: POLLERR is always reported) and reads a completion. */
static int wait_completion(int fd, uint32_t *lo, uint32_t *hi, int *code, const char **why)
{
    for (int tries = 0; tries < 100; tries++) {
        int r = read_completion(fd, lo, hi, code, why);
        if (r != 0) return r;
        struct pollfd p = { .fd = fd, .events = 0 };
        if (poll(&p, 1, 100) < 0) { *why = "poll failed"; return -1; }
    }
    *why = "no completion within 10 s";
    return -1;
}

static void check_option(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, two = 2, v = -1;
    socklen_t len = sizeof v;
    if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one)) fail("so-zerocopy-option", "setsockopt SO_ZEROCOPY 1");
    else if (getsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &v, &len) || v != 1) fail("so-zerocopy-option", "getsockopt does not read back 1");
    else if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &two, sizeof two) == 0 || errno != EINVAL) fail("so-zerocopy-option", "SO_ZEROCOPY 2 is not EINVAL");
    else ok("so-zerocopy-option");
    close(fd);
}

/* Many 64 KiB sends from a ring of buffers; each buffer is reused only after its completion and
 * poisoned at once, so a stack that read a buffer after completing it would corrupt the stream. */
static void check_tcp_many(int expect_zc)
{
    static unsigned char bufs[NBUF][WRITE];
    int fd = tcp_connect(1);
    if (fd < 0) { fail("tcp-many-sends", "connect"); return; }
    uint64_t digest = 1469598103934665603ULL;
    long completed = -1, sends = 0, notifications = 0, copied = 0;
    const char *why = "";
    for (sends = 0; sends < SENDS; sends++) {
        while (sends - NBUF > completed) {
            uint32_t lo, hi; int code;
            if (wait_completion(fd, &lo, &hi, &code, &why) < 0) { fail("tcp-many-sends", why); close(fd); return; }
            if ((long)lo != completed + 1 || hi < lo) { fail("tcp-many-sends", "completions out of order"); close(fd); return; }
            for (uint32_t id = lo; id <= hi; id++) memset(bufs[id % NBUF], 0xDE, WRITE); /* poison */
            if (code & SO_EE_CODE_ZEROCOPY_COPIED) copied += hi - lo + 1;
            completed = hi;
            notifications++;
        }
        unsigned char *b = bufs[sends % NBUF];
        for (int i = 0; i < WRITE; i++) b[i] = (unsigned char)(sends * 7 + i * 13);
        digest = fnv(digest, b, WRITE);
        if (send(fd, b, WRITE, MSG_ZEROCOPY) != WRITE) { fail("tcp-many-sends", "send"); close(fd); return; }
    }
    while (completed < SENDS - 1) {
        uint32_t lo, hi; int code;
        if (wait_completion(fd, &lo, &hi, &code, &why) < 0) { fail("tcp-many-sends", why); close(fd); return; }
        if ((long)lo != completed + 1 || hi < lo) { fail("tcp-many-sends", "completions out of order"); close(fd); return; }
        for (uint32_t id = lo; id <= hi; id++) memset(bufs[id % NBUF], 0xDE, WRITE);
        if (code & SO_EE_CODE_ZEROCOPY_COPIED) copied += hi - lo + 1;
        completed = hi;
        notifications++;
    }
    shutdown(fd, SHUT_WR);
    char reply[64] = { 0 };
    int got = 0, n;
    while ((n = read(fd, reply + got, sizeof reply - 1 - got)) > 0) got += n;
    close(fd);
    char want[64];
    snprintf(want, sizeof want, "%ld %016llx", (long)SENDS * WRITE, (unsigned long long)digest);
    printf("# tcp-many-sends: %ld sends, %ld notifications, %ld copied\n", sends, notifications, copied);
    if (strncmp(reply, want, strlen(want))) { fail("tcp-many-sends", "the peer's count and digest differ"); printf("# want %s got %s\n", want, reply); }
    else if (notifications >= sends) fail("tcp-many-sends", "no completions were coalesced");
    else if (expect_zc && copied > 0) fail("tcp-many-sends", "64 KiB sends completed as copied");
    else ok("tcp-many-sends");
    ok("tcp-completions-in-order");
}

static void check_small_copied_and_pollerr(void)
{
    int fd = tcp_connect(1);
    if (fd < 0) { fail("tcp-small-send-copied", "connect"); return; }
    uint32_t lo, hi; int code; const char *why = "";
    if (read_completion(fd, &lo, &hi, &code, &why) != 0 || errno != EAGAIN) fail("errqueue-empty-eagain", "an empty error queue does not give EAGAIN");
    else ok("errqueue-empty-eagain");
    char small[100] = "small";
    if (send(fd, small, sizeof small, MSG_ZEROCOPY) != sizeof small) { fail("tcp-small-send-copied", "send"); close(fd); return; }
    struct pollfd p = { .fd = fd, .events = 0 };
    int r = 0;
    for (int i = 0; i < 100 && r == 0; i++) r = poll(&p, 1, 100);
    if (r != 1 || !(p.revents & POLLERR)) fail("pollerr", "no POLLERR with a completion waiting");
    else ok("pollerr");
    if (wait_completion(fd, &lo, &hi, &code, &why) != 1) fail("tcp-small-send-copied", why);
    else if (lo != 0 || hi != 0) fail("tcp-small-send-copied", "the first send is not number 0");
    else if (!(code & SO_EE_CODE_ZEROCOPY_COPIED)) fail("tcp-small-send-copied", "a 100-byte send did not report SO_EE_CODE_ZEROCOPY_COPIED");
    else ok("tcp-small-send-copied");
    p.revents = 0;
    if (poll(&p, 1, 0) != 0) fail("pollerr-clears", "POLLERR stays after the queue was read");
    else ok("pollerr-clears");
    close(fd);
}

static void check_flag_without_option(void)
{
    int fd = tcp_connect(0);
    if (fd < 0) { fail("flag-ignored-without-so-zerocopy", "connect"); return; }
    static char b[WRITE];
    if (send(fd, b, sizeof b, MSG_ZEROCOPY) != sizeof b) { fail("flag-ignored-without-so-zerocopy", "send"); close(fd); return; }
    usleep(200 * 1000);
    uint32_t lo, hi; int code; const char *why = "";
    if (read_completion(fd, &lo, &hi, &code, &why) != 0) fail("flag-ignored-without-so-zerocopy", "a completion came for a socket without SO_ZEROCOPY");
    else ok("flag-ignored-without-so-zerocopy");
    close(fd);
}

static void check_udp(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one)) { fail("udp-zerocopy", "SO_ZEROCOPY on UDP"); close(fd); return; }
    struct sockaddr_in a = addr();
    static char d[1000];
    const int n = 100;
    for (int i = 0; i < n; i++)
        if (sendto(fd, d, sizeof d, MSG_ZEROCOPY, (struct sockaddr *)&a, sizeof a) != sizeof d) { fail("udp-zerocopy", "sendto"); close(fd); return; }
    long completed = -1, notes = 0;
    const char *why = "";
    while (completed < n - 1) {
        uint32_t lo, hi; int code;
        if (wait_completion(fd, &lo, &hi, &code, &why) != 1) { fail("udp-zerocopy", why); close(fd); return; }
        if ((long)lo != completed + 1 || hi < lo) { fail("udp-zerocopy", "completions out of order"); close(fd); return; }
        completed = hi;
        notes++;
    }
    printf("# udp-zerocopy: %d sends, %ld notifications\n", n, notes);
    ok("udp-zerocopy");
    close(fd);
}

static int peer(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = addr();
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 16) || bind(u, (struct sockaddr *)&a, sizeof a)) { perror("peer"); return 1; }
    printf("peer listening\n");
    fflush(stdout);
    static unsigned char buf[WRITE];
    long datagrams = 0;
    for (;;) {
        struct pollfd p[2] = { { .fd = l, .events = POLLIN }, { .fd = u, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) continue;
        if (p[1].revents & POLLIN) { if (recv(u, buf, sizeof buf, 0) > 0 && ++datagrams % 100 == 0) { printf("udp %ld\n", datagrams); fflush(stdout); } }
        if (!(p[0].revents & POLLIN)) continue;
        int c = accept(l, 0, 0);
        if (c < 0) continue;
        uint64_t h = 1469598103934665603ULL;
        long total = 0;
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0) { h = fnv(h, buf, n); total += n; }
        char reply[64];
        int k = snprintf(reply, sizeof reply, "%ld %016llx\n", total, (unsigned long long)h);
        if (write(c, reply, k) != k) { }
        printf("received %s", reply);
        fflush(stdout);
        close(c);
    }
}

/* Sends 64 x 64 KiB with MSG_ZEROCOPY from one static buffer and exits at once: the stack must
 * neither crash nor lose the bytes (the peer prints what it received). */
static int exit_outstanding(void)
{
    static unsigned char b[WRITE];
    for (int i = 0; i < WRITE; i++) b[i] = (unsigned char)(i * 31);
    int fd = tcp_connect(1);
    if (fd < 0) { perror("connect"); return 1; }
    for (int i = 0; i < 64; i++)
        if (send(fd, b, WRITE, MSG_ZEROCOPY) != WRITE) { perror("send"); return 1; }
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 64; i++) h = fnv(h, b, WRITE);
    printf("sent %ld %016llx\n", 64L * WRITE, (unsigned long long)h);
    fflush(stdout);
    return 0; /* exit with the completions unread and, likely, sends outstanding */
}

/* Sends SENDS x 64 KiB on fd with MSG_ZEROCOPY from a ring of buffers, reusing one only after
 * its completion; reads every completion. Returns the digest, or 0 with *why set. */
static int use_sendmsg; /* serve-zc-msg: sendmsg with two iovecs instead of send */

static uint64_t send_all_zerocopy(int fd, long *notifications, long *copied, const char **why)
{
    static unsigned char bufs[NBUF][WRITE];
    uint64_t digest = 1469598103934665603ULL;
    long completed = -1;
    for (long sends = 0; sends <= SENDS; sends++) {
        long need = sends == SENDS ? SENDS - 1 : sends - NBUF;
        while (need > completed) {
            uint32_t lo, hi; int code;
            if (wait_completion(fd, &lo, &hi, &code, why) < 0) return 0;
            if ((long)lo != completed + 1 || hi < lo) { *why = "completions out of order"; return 0; }
            for (uint32_t id = lo; id <= hi; id++) memset(bufs[id % NBUF], 0xDE, WRITE);
            if (code & SO_EE_CODE_ZEROCOPY_COPIED) *copied += hi - lo + 1;
            completed = hi;
            (*notifications)++;
        }
        if (sends == SENDS) break;
        unsigned char *b = bufs[sends % NBUF];
        for (int i = 0; i < WRITE; i++) b[i] = (unsigned char)(sends * 7 + i * 13);
        digest = fnv(digest, b, WRITE);
        for (int off = 0; off < WRITE;) {
            ssize_t n;
            if (use_sendmsg) {
                /* sendmsg with the rest in two iovecs (the engine's SENDMSG_ZC path) */
                int half = (WRITE - off) / 2;
                struct iovec v[2] = { { b + off, half }, { b + off + half, WRITE - off - half } };
                struct msghdr m = { 0 };
                m.msg_iov = v;
                m.msg_iovlen = half > 0 ? 2 : 1;
                if (half == 0) v[0] = v[1];
                n = sendmsg(fd, &m, MSG_ZEROCOPY);
            } else n = send(fd, b + off, WRITE - off, MSG_ZEROCOPY);
            if (n <= 0) { *why = "send"; return 0; }
            off += n;
        }
    }
    return digest;
}

static int serve_zc(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(l, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one)) { perror("SO_ZEROCOPY"); return 1; }
    struct sockaddr_in a = addr();
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4)) { perror("serve-zc"); return 1; }
    printf("serving\n");
    fflush(stdout);
    int c = accept(l, 0, 0);
    if (c < 0) { perror("accept"); return 1; }
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &v, &len) || v != 1) printf("FAIL inherit: the accepted socket lacks SO_ZEROCOPY\n");
    long notifications = 0, copied = 0;
    const char *why = "";
    uint64_t digest = send_all_zerocopy(c, &notifications, &copied, &why);
    if (!digest) { printf("FAIL serve-zc: %s (errno %d)\n", why, errno); return 1; }
    printf("served %ld %016llx notifications %ld copied %ld\n", (long)SENDS * WRITE, (unsigned long long)digest, notifications, copied);
    close(c);
    return 0;
}

static int fetch(void)
{
    int fd = tcp_connect(0);
    if (fd < 0) { perror("connect"); return 1; }
    static unsigned char buf[WRITE];
    uint64_t h = 1469598103934665603ULL;
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) { h = fnv(h, buf, n); total += n; }
    printf("fetched %ld %016llx\n", total, (unsigned long long)h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: zerocopy peer|check|exit-outstanding|serve-zc|serve-zc-msg|fetch IP PORT [expect-zc]\n"); return 2; }
    ip = argv[2];
    port = atoi(argv[3]);
    if (!strcmp(argv[1], "peer")) return peer();
    if (!strcmp(argv[1], "exit-outstanding")) return exit_outstanding();
    if (!strcmp(argv[1], "serve-zc")) return serve_zc();
    if (!strcmp(argv[1], "serve-zc-msg")) { use_sendmsg = 1; return serve_zc(); }
    if (!strcmp(argv[1], "fetch")) return fetch();
    int expect_zc = argc > 4 && !strcmp(argv[4], "expect-zc");
    check_option();
    check_tcp_many(expect_zc);
    check_small_copied_and_pollerr();
    check_flag_without_option();
    check_udp();
    printf("%d failed\n", failed);
    return failed ? 1 : 0;
}
