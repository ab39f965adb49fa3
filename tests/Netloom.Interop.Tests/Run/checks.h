/* What the offload C test programs share: the server's address, the failure count, CHECK (which
 * prints "ok NAME" or "FAIL NAME: why", the lines the C# tests look for), a clock, a client. */
#ifndef NETLOOM_CHECKS_H
#define NETLOOM_CHECKS_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr;
static int failures;

#define CHECK(name, cond, ...) do { if (cond) printf("ok %s\n", name); else { printf("FAIL %s: ", name); printf(__VA_ARGS__); printf("\n"); failures++; } fflush(stdout); } while (0)

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* A client: a plain kernel socket connected to the server's address. */
static int client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("connect"); exit(2); }
    return fd;
}
#endif
