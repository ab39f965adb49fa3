/* The "is this fd ours?" tables: one byte per descriptor number, in a mapping whose untouched
 * pages cost nothing. Only the engine writes them (through nl_host.mark), every call reads them. */
#include "netloom.h"
#include <sys/mman.h>

volatile uint8_t *nl_fd_ours, *nl_epoll_ours;
int32_t *nl_epoll_sleepers;

void nl_tables_init(void)
{
    void *fds = mmap(NULL, NL_MAX_FD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void *eps = mmap(NULL, NL_MAX_FD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void *sleepers = mmap(NULL, NL_MAX_FD * sizeof(int32_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fds == MAP_FAILED || eps == MAP_FAILED || sleepers == MAP_FAILED) return; /* no tables: every call goes to libc */
    nl_epoll_sleepers = sleepers;
    nl_epoll_ours = eps;
    nl_fd_ours = fds;
}

void nl_mark(int fd, int ours)
{
    if (fd >= 0 && fd < NL_MAX_FD && nl_fd_ours) nl_fd_ours[fd] = (uint8_t)(ours != 0);
}

void nl_mark_epoll(int epfd, int ours)
{
    if (epfd < 0 || epfd >= NL_MAX_FD || !nl_epoll_ours) return;
    /* Atomic: the program's epoll_ctl on another thread sets the kernel bit of the same byte. */
    uint8_t *b = (uint8_t *)&nl_epoll_ours[epfd];
    uint8_t v = ours ? __atomic_fetch_or(b, NL_EPOLL_OURS, __ATOMIC_SEQ_CST) : __atomic_fetch_and(b, (uint8_t)~NL_EPOLL_OURS, __ATOMIC_SEQ_CST);
    if (ours && !(v & NL_EPOLL_OURS)) nl_epoll_gained(epfd);
}

void nl_mark_epoll_kernel(int epfd)
{
    if (epfd >= 0 && epfd < NL_MAX_FD && nl_epoll_ours) __atomic_fetch_or((uint8_t *)&nl_epoll_ours[epfd], NL_EPOLL_KERNEL, __ATOMIC_SEQ_CST);
}

void nl_mark_epoll_wake(int epfd, int armed)
{
    if (epfd < 0 || epfd >= NL_MAX_FD || !nl_epoll_ours) return;
    uint8_t *b = (uint8_t *)&nl_epoll_ours[epfd];
    if (armed) __atomic_fetch_or(b, NL_EPOLL_WAKE, __ATOMIC_SEQ_CST);
    else __atomic_fetch_and(b, (uint8_t)~NL_EPOLL_WAKE, __ATOMIC_SEQ_CST);
}

/* 1 when the engine must ask the kernel about epfd: kernel descriptors were ever added to it, or
 * the interposer's wake-up is in it. */
int nl_epoll_kernel(int epfd)
{
    return epfd >= 0 && epfd < NL_MAX_FD && nl_epoll_ours && (nl_epoll_ours[epfd] & (NL_EPOLL_KERNEL | NL_EPOLL_WAKE)) != 0;
}

void nl_forget_epoll(int epfd)
{
    if (epfd >= 0 && epfd < NL_MAX_FD && nl_epoll_ours) nl_epoll_ours[epfd] = 0;
}
