/* Connects, writes N bytes and returns from main without closing: the bytes must still arrive,
 * followed by a FIN, as they do when the kernel owns the socket. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) return 2;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return 3;
    long n = atol(argv[3]), done = 0;
    static char buf[65536];
    memset(buf, 'e', sizeof buf);
    while (done < n) {
        ssize_t w = write(fd, buf, (size_t)(n - done < (long)sizeof buf ? n - done : (long)sizeof buf));
        if (w <= 0) return 4;
        done += w;
    }
    return 0; /* no close: exit() closes */
}
