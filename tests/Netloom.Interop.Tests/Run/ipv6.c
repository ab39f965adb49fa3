/* IPv6 socket semantics, checked exactly: the same program passes on the Linux kernel and under
 * netloom run.
 *
 *   ipv6 local
 *       checks that need no peer (struct layout, options, bind's errors, getsockname): run on
 *       the kernel and under netloom run, both must pass.
 *   ipv6 remote KERNEL4 KERNEL6 OURS4 OURS6 KERNEL_LINKLOCAL IFNAME PORT
 *       under netloom run, with the kernel on the other side of a TAP: a forked child (whose
 *       sockets are the kernel's: a child forked after the engine started never enters it) plays
 *       the kernel peer, told what to do over a pipe. Checks getsockname/getpeername, IPv4-mapped
 *       addresses, IPV6_V6ONLY, dual-stack and v6-only listeners, UDP over both versions and a
 *       link-local scope id, each result compared byte for byte.
 *
 * Prints "ok NAME" or "FAIL NAME: why" per check, then "N passed, M failed". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

static void check(const char *name, int ok, const char *fmt, ...)
{
    if (ok) { printf("ok %s\n", name); passed++; }
    else {
        va_list ap;
        va_start(ap, fmt);
        printf("FAIL %s: ", name);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        failed++;
    }
    fflush(stdout);
}

static struct sockaddr_in6 a6(const char *text, int port, unsigned scope)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_scope_id = scope;
    if (inet_pton(AF_INET6, text, &a.sin6_addr) != 1) { fprintf(stderr, "bad address %s\n", text); exit(2); }
    return a;
}

static const char *show(const struct sockaddr_in6 *a, socklen_t len)
{
    static char out[4][128];
    static int k;
    char *o = out[k++ & 3], t[INET6_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET6, &a->sin6_addr, t, sizeof t);
    snprintf(o, 128, "family %d len %u [%s]:%d flow %u scope %u", a->sin6_family, (unsigned)len, t, ntohs(a->sin6_port),
             a->sin6_flowinfo, a->sin6_scope_id);
    return o;
}

/* The whole struct as the kernel would write it: family, port, zero flow info, the address, the scope id. */
static int same(const struct sockaddr_in6 *got, socklen_t len, const char *text, int port, unsigned scope)
{
    struct sockaddr_in6 want = a6(text, port, scope);
    return len == sizeof want && memcmp(got, &want, sizeof want) == 0;
}

static int opt(int fd, int level, int name)
{
    int v = -12345;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0) return -errno - 100000;
    return v;
}

static int setopt(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v) < 0 ? errno : 0;
}

static void local_checks(void)
{
    check("sockaddr-in6-layout", sizeof(struct sockaddr_in6) == 28 && offsetof(struct sockaddr_in6, sin6_port) == 2
          && offsetof(struct sockaddr_in6, sin6_flowinfo) == 4 && offsetof(struct sockaddr_in6, sin6_addr) == 8
          && offsetof(struct sockaddr_in6, sin6_scope_id) == 24, "sizeof %zu", sizeof(struct sockaddr_in6));

    int t = socket(AF_INET6, SOCK_STREAM, 0), u = socket(AF_INET6, SOCK_DGRAM, 0);
    int t4 = socket(AF_INET, SOCK_STREAM, 0);
    check("so-domain", opt(t, SOL_SOCKET, SO_DOMAIN) == AF_INET6 && opt(u, SOL_SOCKET, SO_DOMAIN) == AF_INET6
          && opt(t4, SOL_SOCKET, SO_DOMAIN) == AF_INET, "tcp %d udp %d", opt(t, SOL_SOCKET, SO_DOMAIN), opt(u, SOL_SOCKET, SO_DOMAIN));
    check("v6only-default-off", opt(t, IPPROTO_IPV6, IPV6_V6ONLY) == 0 && opt(u, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "%d", opt(t, IPPROTO_IPV6, IPV6_V6ONLY));
    int set1 = setopt(t, IPPROTO_IPV6, IPV6_V6ONLY, 1), got1 = opt(t, IPPROTO_IPV6, IPV6_V6ONLY);
    int set0 = setopt(t, IPPROTO_IPV6, IPV6_V6ONLY, 0), got0 = opt(t, IPPROTO_IPV6, IPV6_V6ONLY);
    check("v6only-set-and-get", set1 == 0 && got1 == 1 && set0 == 0 && got0 == 0, "set %d got %d, set %d got %d", set1, got1, set0, got0);
    check("ipv6-options-on-an-inet-socket", opt(t4, IPPROTO_IPV6, IPV6_V6ONLY) == -EOPNOTSUPP - 100000
          && setopt(t4, IPPROTO_IPV6, IPV6_V6ONLY, 1) == ENOPROTOOPT, "get %d set %d", opt(t4, IPPROTO_IPV6, IPV6_V6ONLY), setopt(t4, IPPROTO_IPV6, IPV6_V6ONLY, 1));
    check("unicast-hops", opt(t, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 64 && setopt(t, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 300) == EINVAL
          && setopt(t, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7) == 0 && opt(t, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 7
          && setopt(t, IPPROTO_IPV6, IPV6_UNICAST_HOPS, -1) == 0 && opt(t, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 64, "%d", opt(t, IPPROTO_IPV6, IPV6_UNICAST_HOPS));
    check("tclass", opt(t, IPPROTO_IPV6, IPV6_TCLASS) == 0 && setopt(t, IPPROTO_IPV6, IPV6_TCLASS, 0x28) == 0 && opt(t, IPPROTO_IPV6, IPV6_TCLASS) == 0x28
          && setopt(t, IPPROTO_IPV6, IPV6_TCLASS, 256) == EINVAL && setopt(t, IPPROTO_IPV6, IPV6_TCLASS, -1) == 0 && opt(t, IPPROTO_IPV6, IPV6_TCLASS) == 0,
          "%d", opt(t, IPPROTO_IPV6, IPV6_TCLASS));
    check("multicast-defaults", opt(u, IPPROTO_IPV6, IPV6_MULTICAST_HOPS) == 1 && opt(u, IPPROTO_IPV6, IPV6_MULTICAST_LOOP) == 1,
          "hops %d loop %d", opt(u, IPPROTO_IPV6, IPV6_MULTICAST_HOPS), opt(u, IPPROTO_IPV6, IPV6_MULTICAST_LOOP));
    check("unknown-ipv6-option", opt(t, IPPROTO_IPV6, 200) == -EOPNOTSUPP - 100000, "%d", opt(t, IPPROTO_IPV6, 200));
    check("ip-tos-on-inet6", setopt(t, IPPROTO_IP, IP_TOS, 0x10) == 0 && opt(t, IPPROTO_IP, IP_TOS) == 0x10, "%d", opt(t, IPPROTO_IP, IP_TOS));

    struct sockaddr_in6 n;
    socklen_t len = sizeof n;
    memset(&n, 0xAA, sizeof n);
    int r = getsockname(t, (struct sockaddr *)&n, &len);
    check("getsockname-fresh", r == 0 && same(&n, len, "::", 0, 0), "%s", show(&n, len));
    len = 8; /* too short: cut, and told the full length */
    memset(&n, 0xAA, sizeof n);
    r = getsockname(u, (struct sockaddr *)&n, &len);
    check("getsockname-short-buffer", r == 0 && len == 28 && n.sin6_family == AF_INET6 && ((unsigned char *)&n)[8] == 0xAA, "len %u", (unsigned)len);
    len = sizeof n;
    check("getpeername-unconnected", getpeername(t, (struct sockaddr *)&n, &len) < 0 && errno == ENOTCONN, "errno %d", errno);

    struct sockaddr_in6 any = a6("::", 0, 0);
    struct sockaddr_in four;
    memset(&four, 0, sizeof four);
    four.sin_family = AF_INET;
    errno = 0;
    check("bind-sockaddr-in-is-einval", bind(t, (struct sockaddr *)&four, sizeof four) < 0 && errno == EINVAL, "errno %d", errno);
    struct sockaddr_in6 wrong = any;
    wrong.sin6_family = AF_INET;
    errno = 0;
    check("bind-wrong-family-is-eafnosupport", bind(t, (struct sockaddr *)&wrong, sizeof wrong) < 0 && errno == EAFNOSUPPORT, "errno %d", errno);
    errno = 0;
    check("bind-23-bytes-is-einval", bind(t, (struct sockaddr *)&any, 23) < 0 && errno == EINVAL, "errno %d", errno);
    r = bind(t, (struct sockaddr *)&any, 24); /* SIN6_LEN_RFC2133: no scope id, still fine */
    len = sizeof n;
    getsockname(t, (struct sockaddr *)&n, &len);
    check("bind-24-bytes", r == 0 && len == 28 && n.sin6_port != 0 && same(&n, len, "::", ntohs(n.sin6_port), 0), "r %d errno %d %s", r, errno, show(&n, len));
    check("v6only-after-bind-is-einval", setopt(t, IPPROTO_IPV6, IPV6_V6ONLY, 1) == EINVAL, "");
    int v = socket(AF_INET6, SOCK_DGRAM, 0);
    setopt(v, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    struct sockaddr_in6 mapped = a6("::ffff:0.0.0.0", 0, 0);
    errno = 0;
    check("v6only-bind-ipv4-mapped-is-einval", bind(v, (struct sockaddr *)&mapped, sizeof mapped) < 0 && errno == EINVAL, "errno %d", errno);
    struct sockaddr_in6 ll = a6("fe80::1", 0, 0);
    errno = 0;
    check("bind-link-local-without-scope-is-einval", bind(v, (struct sockaddr *)&ll, sizeof ll) < 0 && errno == EINVAL, "errno %d", errno);
    close(t); close(u); close(t4); close(v);
}

/* ---- the kernel peer: a forked child whose sockets are the kernel's ---- */

static int to_child, from_child;

static void reply(int fd, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    if (write(fd, line, n) != n) _exit(3);
}

static int read_line(int fd, char *out, int size)
{
    int n = 0;
    while (n < size - 1) {
        char c;
        if (read(fd, &c, 1) != 1) return -1;
        if (c == '\n') break;
        out[n++] = c;
    }
    out[n] = 0;
    return n;
}

static void name_of(const struct sockaddr_storage *s, char *out, int size)
{
    char t[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (s->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)s;
        inet_ntop(AF_INET6, &a->sin6_addr, t, sizeof t);
        port = ntohs(a->sin6_port);
    } else if (s->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)s;
        inet_ntop(AF_INET, &a->sin_addr, t, sizeof t);
        port = ntohs(a->sin_port);
    }
    snprintf(out, size, "[%s]:%d", t, port);
}

/* Commands: "listen PORT", "accept", "connect4 ADDR PORT", "connect6 ADDR PORT", "udp PORT",
 * "udpecho", "quit". Each answers one line: "ok ..." or "err ERRNO". */
static void kernel_peer(int in, int out)
{
    int listener = -1, udp = -1;
    char line[256], a[128];
    while (read_line(in, line, sizeof line) >= 0) {
        int port;
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        if (sscanf(line, "listen %d", &port) == 1) {
            listener = socket(AF_INET6, SOCK_STREAM, 0);
            int one = 1, zero = 0;
            setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            struct sockaddr_in6 any = a6("::", port, 0);
            if (bind(listener, (struct sockaddr *)&any, sizeof any) < 0 || listen(listener, 16) < 0) reply(out, "err %d", errno);
            else reply(out, "ok");
        } else if (strcmp(line, "accept") == 0) {
            int c = accept(listener, (struct sockaddr *)&from, &len);
            if (c < 0) { reply(out, "err %d", errno); continue; }
            name_of(&from, a, sizeof a);
            reply(c, "%s", a); /* the connection learns how the kernel saw it */
            close(c);
            reply(out, "ok %s", a);
        } else if (sscanf(line, "connect4 %127s %d", a, &port) == 2) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in to;
            memset(&to, 0, sizeof to);
            to.sin_family = AF_INET;
            to.sin_port = htons(port);
            inet_pton(AF_INET, a, &to.sin_addr);
            if (connect(c, (struct sockaddr *)&to, sizeof to) < 0) { reply(out, "err %d", errno); close(c); continue; }
            getsockname(c, (struct sockaddr *)&from, &len);
            reply(out, "ok %d", ntohs(((struct sockaddr_in *)&from)->sin_port));
            close(c);
        } else if (sscanf(line, "connect6 %127s %d", a, &port) == 2) {
            int c = socket(AF_INET6, SOCK_STREAM, 0);
            struct sockaddr_in6 to = a6(a, port, 0);
            if (connect(c, (struct sockaddr *)&to, sizeof to) < 0) { reply(out, "err %d", errno); close(c); continue; }
            getsockname(c, (struct sockaddr *)&from, &len);
            reply(out, "ok %d", ntohs(((struct sockaddr_in6 *)&from)->sin6_port));
            close(c);
        } else if (sscanf(line, "udp %d", &port) == 1) {
            udp = socket(AF_INET6, SOCK_DGRAM, 0);
            int zero = 0;
            setsockopt(udp, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            struct sockaddr_in6 any = a6("::", port, 0);
            if (bind(udp, (struct sockaddr *)&any, sizeof any) < 0) reply(out, "err %d", errno);
            else reply(out, "ok");
        } else if (strcmp(line, "udpecho") == 0) {
            char buf[2048];
            ssize_t n = recvfrom(udp, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
            if (n < 0) { reply(out, "err %d", errno); continue; }
            name_of(&from, a, sizeof a);
            sendto(udp, a, strlen(a), 0, (struct sockaddr *)&from, len); /* the sender's address as the kernel saw it */
            reply(out, "ok %s", a);
        } else break;
    }
    _exit(0);
}

static const char *ask(const char *fmt, ...)
{
    static char line[256];
    char cmd[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    reply(to_child, "%s", cmd);
    if (read_line(from_child, line, sizeof line) < 0) return "err eof";
    return line;
}

static int connect6(int fd, const char *text, int port, unsigned scope)
{
    struct sockaddr_in6 to = a6(text, port, scope);
    return connect(fd, (struct sockaddr *)&to, sizeof to) < 0 ? errno : 0;
}

/* Names as the kernel printed them: "[::ffff:10.0.0.2]:4321" */
static int read_text(int fd, char *out, int size)
{
    int n = 0;
    ssize_t r;
    while (n < size - 1 && (r = read(fd, out + n, size - 1 - n)) > 0) {
        n += r;
        if (out[n - 1] == '\n') break;
    }
    out[n] = 0;
    if (n > 0 && out[n - 1] == '\n') out[n - 1] = 0;
    return n;
}

static void remote_checks(const char *k4, const char *k6, const char *o4, const char *o6, const char *kll, const char *ifname, int port)
{
    char mk4[64], mo4[64], want[160], text[160];
    snprintf(mk4, sizeof mk4, "::ffff:%s", k4);
    snprintf(mo4, sizeof mo4, "::ffff:%s", o4);
    struct sockaddr_in6 n;
    socklen_t len;

    /* The engine starts at the first socket; the child forked after it is the kernel's. */
    int first = socket(AF_INET6, SOCK_STREAM, 0);
    int p1[2], p2[2];
    if (pipe(p1) < 0 || pipe(p2) < 0) exit(2);
    pid_t child = fork();
    if (child == 0) { close(p1[1]); close(p2[0]); kernel_peer(p1[0], p2[1]); }
    close(p1[0]); close(p2[1]);
    to_child = p1[1];
    from_child = p2[0];
    close(first);

    /* 1. An IPv6 client of the kernel. */
    const char *r = ask("listen %d", port);
    check("kernel-listens", strcmp(r, "ok") == 0, "%s", r);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    int e = connect6(c, k6, port, 0);
    len = sizeof n;
    getpeername(c, (struct sockaddr *)&n, &len);
    check("tcp6-connect-getpeername", e == 0 && same(&n, len, k6, port, 0), "errno %d, %s", e, show(&n, len));
    len = sizeof n;
    getsockname(c, (struct sockaddr *)&n, &len);
    int myport = ntohs(n.sin6_port);
    check("tcp6-connect-getsockname", same(&n, len, o6, myport, 0) && myport != 0, "%s", show(&n, len));
    r = ask("accept");
    read_text(c, text, sizeof text);
    snprintf(want, sizeof want, "[%s]:%d", o6, myport);
    check("tcp6-kernel-sees-the-same-ends", strcmp(text, want) == 0 && strncmp(r, "ok ", 3) == 0, "kernel saw %s, want %s", text, want);
    close(c);

    /* 2. IPv4 through an AF_INET6 socket: IPv4-mapped on both ends. */
    c = socket(AF_INET6, SOCK_STREAM, 0);
    e = connect6(c, mk4, port, 0);
    len = sizeof n;
    getpeername(c, (struct sockaddr *)&n, &len);
    check("mapped-connect-getpeername", e == 0 && same(&n, len, mk4, port, 0), "errno %d, %s", e, show(&n, len));
    len = sizeof n;
    getsockname(c, (struct sockaddr *)&n, &len);
    myport = ntohs(n.sin6_port);
    check("mapped-connect-getsockname", same(&n, len, mo4, myport, 0), "%s", show(&n, len));
    r = ask("accept");
    read_text(c, text, sizeof text);
    snprintf(want, sizeof want, "[%s]:%d", mo4, myport);
    check("mapped-kernel-sees-ipv4", strcmp(text, want) == 0, "kernel saw %s, want %s (%s)", text, want, r);
    close(c);

    /* 3. IPV6_V6ONLY refuses IPv4-mapped destinations. */
    c = socket(AF_INET6, SOCK_STREAM, 0);
    setopt(c, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    e = connect6(c, mk4, port, 0);
    check("v6only-connect-mapped-is-enetunreach", e == ENETUNREACH, "errno %d", e);
    close(c);

    /* 4. A dual-stack listener on [::] under netloom run: IPv4 clients show IPv4-mapped. */
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 any = a6("::", port + 1, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    check("dual-listen", bind(l, (struct sockaddr *)&any, sizeof any) == 0 && listen(l, 8) == 0, "errno %d", errno);
    r = ask("connect4 %s %d", o4, port + 1);
    int kport = 0;
    sscanf(r, "ok %d", &kport);
    len = sizeof n;
    int a = accept(l, (struct sockaddr *)&n, &len);
    check("dual-accepts-ipv4-as-mapped", a >= 0 && same(&n, len, mk4, kport, 0), "%s (child: %s)", show(&n, len), r);
    len = sizeof n;
    getsockname(a, (struct sockaddr *)&n, &len);
    check("dual-accepted-ipv4-getsockname", same(&n, len, mo4, port + 1, 0) && opt(a, SOL_SOCKET, SO_DOMAIN) == AF_INET6, "%s", show(&n, len));
    close(a);
    r = ask("connect6 %s %d", o6, port + 1);
    sscanf(r, "ok %d", &kport);
    len = sizeof n;
    a = accept(l, (struct sockaddr *)&n, &len);
    check("dual-accepts-ipv6", a >= 0 && same(&n, len, k6, kport, 0), "%s (child: %s)", show(&n, len), r);
    len = sizeof n;
    getsockname(a, (struct sockaddr *)&n, &len);
    check("dual-accepted-ipv6-getsockname", same(&n, len, o6, port + 1, 0), "%s", show(&n, len));
    close(a);
    close(l);

    /* 5. A v6-only listener: IPv4 is refused, IPv6 accepted. */
    l = socket(AF_INET6, SOCK_STREAM, 0);
    setopt(l, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    any = a6("::", port + 2, 0);
    bind(l, (struct sockaddr *)&any, sizeof any);
    listen(l, 8);
    r = ask("connect4 %s %d", o4, port + 2);
    snprintf(want, sizeof want, "err %d", ECONNREFUSED);
    check("v6only-listener-refuses-ipv4", strcmp(r, want) == 0, "%s", r);
    r = ask("connect6 %s %d", o6, port + 2);
    len = sizeof n;
    a = accept(l, (struct sockaddr *)&n, &len);
    check("v6only-listener-accepts-ipv6", strncmp(r, "ok ", 3) == 0 && a >= 0, "%s", r);
    close(a);
    close(l);

    /* 6. An AF_INET listener does not take IPv6. */
    l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any4;
    memset(&any4, 0, sizeof any4);
    any4.sin_family = AF_INET;
    any4.sin_port = htons(port + 3);
    bind(l, (struct sockaddr *)&any4, sizeof any4);
    listen(l, 8);
    r = ask("connect6 %s %d", o6, port + 3);
    check("inet-listener-refuses-ipv6", strcmp(r, want) == 0, "%s", r);

    /* 6b. ...but a v6-only listener may share its port (redis's "bind * -::*"), and then each
     * takes its own version; a dual-stack one may not. */
    int d = socket(AF_INET6, SOCK_STREAM, 0);
    any = a6("::", port + 3, 0);
    errno = 0;
    check("dual-listener-on-an-inet-port-is-eaddrinuse", (bind(d, (struct sockaddr *)&any, sizeof any) < 0 || listen(d, 8) < 0) && errno == EADDRINUSE,
          "errno %d", errno);
    close(d);
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    setopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    int ok6 = bind(l6, (struct sockaddr *)&any, sizeof any) == 0 && listen(l6, 8) == 0;
    const char *r6 = ask("connect6 %s %d", o6, port + 3);
    int k6port = 0;
    sscanf(r6, "ok %d", &k6port);
    len = sizeof n;
    a = accept(l6, (struct sockaddr *)&n, &len);
    check("v6only-listener-shares-the-inet-port", ok6 && a >= 0 && same(&n, len, k6, k6port, 0), "%s (%s)", show(&n, len), r6);
    close(a);
    const char *r4 = ask("connect4 %s %d", o4, port + 3);
    struct sockaddr_in n4;
    socklen_t len4 = sizeof n4;
    a = accept(l, (struct sockaddr *)&n4, &len4);
    char t4[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &n4.sin_addr, t4, sizeof t4);
    check("inet-listener-beside-it-takes-ipv4", strncmp(r4, "ok ", 3) == 0 && a >= 0 && len4 == sizeof n4 && n4.sin_family == AF_INET && strcmp(t4, k4) == 0,
          "%s len %u %s", r4, (unsigned)len4, t4);
    close(a);
    close(l6);
    close(l);

    /* 7. UDP over both versions from one AF_INET6 socket. */
    r = ask("udp %d", port + 4);
    check("kernel-udp", strcmp(r, "ok") == 0, "%s", r);
    int u = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 to = a6(k6, port + 4, 0);
    char buf[256];
    for (int version = 6; version >= 4; version -= 2) {
        const char *dst = version == 6 ? k6 : mk4, *src = version == 6 ? o6 : mo4;
        to = a6(dst, port + 4, 0);
        ssize_t sent = sendto(u, "hello", 5, 0, (struct sockaddr *)&to, sizeof to);
        r = ask("udpecho");
        len = sizeof n;
        memset(&n, 0xAA, sizeof n);
        ssize_t got = recvfrom(u, buf, sizeof buf - 1, 0, (struct sockaddr *)&n, &len);
        buf[got > 0 ? got : 0] = 0;
        struct sockaddr_in6 me;
        socklen_t mlen = sizeof me;
        getsockname(u, (struct sockaddr *)&me, &mlen);
        snprintf(want, sizeof want, "[%s]:%d", src, ntohs(me.sin6_port));
        char name[64];
        snprintf(name, sizeof name, "udp%d-sendto-recvfrom", version);
        check(name, sent == 5 && same(&n, len, dst, port + 4, 0) && strcmp(buf, want) == 0 && same(&me, mlen, "::", ntohs(me.sin6_port), 0),
              "sent %zd, from %s, kernel saw %s want %s (%s), bound %s", sent, show(&n, len), buf, want, r, show(&me, mlen));
    }
    close(u);
    u = socket(AF_INET6, SOCK_DGRAM, 0);
    setopt(u, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    to = a6(mk4, port + 4, 0);
    errno = 0;
    check("udp-v6only-sendto-mapped-is-enetunreach", sendto(u, "x", 1, 0, (struct sockaddr *)&to, sizeof to) < 0 && errno == ENETUNREACH, "errno %d", errno);
    close(u);

    /* 8. Link-local: a scope id is needed, and comes back. */
    unsigned scope = if_nametoindex(ifname);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    e = connect6(c, kll, port, 0);
    check("link-local-without-scope-is-einval", e == EINVAL, "errno %d", e);
    e = connect6(c, kll, port, scope);
    len = sizeof n;
    getpeername(c, (struct sockaddr *)&n, &len);
    check("link-local-connect-reports-the-scope", e == 0 && scope != 0 && same(&n, len, kll, port, scope), "errno %d scope %u %s", e, scope, show(&n, len));
    len = sizeof n;
    getsockname(c, (struct sockaddr *)&n, &len);
    char ours[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &n.sin6_addr, ours, sizeof ours);
    check("link-local-source", strncmp(ours, "fe80:", 5) == 0 && n.sin6_scope_id == scope, "%s", show(&n, len));
    r = ask("accept");
    close(c);

    ask("quit");
    waitpid(child, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "local") == 0) local_checks();
    else if (argc >= 9 && strcmp(argv[1], "remote") == 0) remote_checks(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], atoi(argv[8]));
    else {
        fprintf(stderr, "usage: ipv6 local | ipv6 remote KERNEL4 KERNEL6 OURS4 OURS6 KERNEL_LINKLOCAL IFNAME PORT\n");
        return 2;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
