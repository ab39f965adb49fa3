/* libc's own functions, found once with dlsym(RTLD_NEXT). A call that arrives before the
 * constructor ran (from another library's constructor) resolves them on the spot. */
#include "netloom.h"
#include <dlfcn.h>

struct nl_real nl_real;

#define RESOLVE(name) nl_real.name = (__typeof__(nl_real.name))dlsym(RTLD_NEXT, #name)

void nl_real_init(void)
{
    RESOLVE(socket); RESOLVE(close); RESOLVE(close_range); RESOLVE(closefrom); RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3);
    RESOLVE(fcntl); RESOLVE(fcntl64); RESOLVE(ioctl);
    RESOLVE(bind); RESOLVE(listen); RESOLVE(accept); RESOLVE(accept4); RESOLVE(connect); RESOLVE(shutdown);
    RESOLVE(getsockopt); RESOLVE(setsockopt); RESOLVE(getsockname); RESOLVE(getpeername);
    RESOLVE(read); RESOLVE(readv); RESOLVE(write); RESOLVE(writev);
    RESOLVE(recv); RESOLVE(recvfrom); RESOLVE(recvmsg); RESOLVE(recvmmsg);
    RESOLVE(send); RESOLVE(sendto); RESOLVE(sendmsg); RESOLVE(sendmmsg); RESOLVE(sendfile); RESOLVE(sendfile64);
    RESOLVE(poll); RESOLVE(ppoll); RESOLVE(select); RESOLVE(pselect);
    RESOLVE(epoll_create); RESOLVE(epoll_create1); RESOLVE(epoll_ctl); RESOLVE(epoll_wait); RESOLVE(epoll_pwait); RESOLVE(epoll_pwait2);
    RESOLVE(fork); RESOLVE(syscall);
    if (!nl_real.fcntl64) nl_real.fcntl64 = nl_real.fcntl;
    if (!nl_real.sendfile64) nl_real.sendfile64 = nl_real.sendfile;
}
