/* The socket calls. Each asks "is this fd ours?" and passes anything else to libc untouched. */
#include "netloom.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The stack serves IPv4, and IPv6 unless NETLOOM_IP6=off (then AF_INET6 never loads the engine);
 * the offload engine (NETLOOM_MODE=offload) takes IPv6 TCP too. */
static int wanted(int domain, int type)
{
    static int offload = -1, ip6 = -1;
    if (offload < 0) {
        const char *mode = getenv("NETLOOM_MODE"), *v6 = getenv("NETLOOM_IP6");
        offload = mode && strcmp(mode, "offload") == 0;
        ip6 = offload || !v6 || strcmp(v6, "off") != 0;
    }
    int kind = type & 0xf; /* SOCK_NONBLOCK and SOCK_CLOEXEC ride in the high bits */
    return (domain == AF_INET || (domain == AF_INET6 && ip6)) && (kind == SOCK_STREAM || kind == SOCK_DGRAM);
}

int socket(int domain, int type, int protocol)
{
    if (wanted(domain, type) && !nl_in_child && !nl_depth) {
        const struct nl_engine *e = nl_engine_get();
        if (e) {
            nl_depth++;
            long r = e->socket(domain, type, protocol);
            nl_depth--;
            if (r != NL_KERNEL) return (int)nl_result(r);
        }
    }
    return REAL(socket)(domain, type, protocol);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{ ROUTE(fd, bind(fd, addr, len), REAL(bind)(fd, addr, len)); }

int listen(int fd, int backlog)
{ ROUTE(fd, listen(fd, backlog), REAL(listen)(fd, backlog)); }

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{ ROUTE(fd, accept4(fd, addr, len, flags), REAL(accept4)(fd, addr, len, flags)); }

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{ ROUTE(fd, accept4(fd, addr, len, 0), REAL(accept)(fd, addr, len)); }

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{ ROUTE(fd, connect(fd, addr, len), REAL(connect)(fd, addr, len)); }

int shutdown(int fd, int how)
{ ROUTE(fd, shutdown(fd, how), REAL(shutdown)(fd, how)); }

int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{ ROUTE(fd, getsockopt(fd, level, name, value, len), REAL(getsockopt)(fd, level, name, value, len)); }

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{ ROUTE(fd, setsockopt(fd, level, name, value, len), REAL(setsockopt)(fd, level, name, value, len)); }

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{ ROUTE(fd, getsockname(fd, addr, len), REAL(getsockname)(fd, addr, len)); }

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{ ROUTE(fd, getpeername(fd, addr, len), REAL(getpeername)(fd, addr, len)); }
