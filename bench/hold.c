/* bench/hold.c: the client of `bench/compare --scale`. It opens idle keep-alive connections
 * to a server on 127.0.0.1, has each answered once, and keeps them open until told to close.
 *
 *   hold PORT FIRST PER_ADDR SECONDS
 *
 * Connection FIRST + i is made from source address 127.0.0.(2 + (FIRST + i) / PER_ADDR), so
 * that no source address carries more than PER_ADDR connections: connect(2) looks for a free
 * local port among those of one parity first, and past about half the ephemeral range per
 * address that search slows the fill about tenfold. The process ends itself after SECONDS
 * (alarm), whatever its parent does; it holds at most as many connections as its descriptor
 * limit allows, which is why bench/compare starts several.
 *
 * Commands on stdin, one a line; each answers one line on stdout:
 *   open K   open K more connections, each sending GET /alwaysok and reading a 200:
 *            "opened HELD FAILED ERROR" (HELD in all, FAILED in this command, the first
 *            failure's reason or "-")
 *   check    a second GET on every held connection: "answered A of H" (those that failed
 *            are closed and no longer held)
 *   quit     (or end of input) close every connection with a reset, so that neither end is
 *            left in TIME_WAIT, and exit
 *
 * Plain C with the system's headers only: bench/compare builds it with `cc -O2` in a second,
 * and one process does about 30,000 connections a second on one CPU, more than the servers
 * accept.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Connections being opened or checked at once: enough to keep the server busy, few enough
 * that the listen backlog (4,096 for tinyapi, nginx's 4,096 too) never overflows, which would
 * cost a one-second SYN retransmission. */
#define WINDOW 256
/* A response to GET /alwaysok is about 150 bytes from either server. */
#define RESPONSE_MAX 1024
/* A connection that has not been answered in this time has failed. */
#define ANSWER_MS 10000

static const char REQUEST[] = "GET /alwaysok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

struct pending {
    int fd; /* -1: free */
    int held_index; /* check: the index in held[]; open: -1 */
    int sent;
    long long started_ms;
    size_t got;
    char buf[RESPONSE_MAX];
};

static int *held;
static size_t nheld, capacity;
static struct pending window[WINDOW];
static int ep, port, per_addr;
static long first;
static char first_error[64];

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void note_error(const char *what) {
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s", what);
}

/* 1: a complete 200 response is in buf; 0: not yet; -1: another status or nonsense. */
static int response_state(const struct pending *p) {
    const char *end = memmem(p->buf, p->got, "\r\n\r\n", 4);
    if (!end)
        return p->got == RESPONSE_MAX ? -1 : 0;
    if (p->got < 12 || memcmp(p->buf + 9, "200", 3) != 0)
        return -1;
    size_t head = (size_t)(end - p->buf) + 4;
    const char *cl = memmem(p->buf, head, "Content-Length:", 15);
    if (!cl)
        cl = memmem(p->buf, head, "content-length:", 15);
    if (!cl)
        return -1;
    size_t length = strtoul(cl + 15, NULL, 10);
    return p->got >= head + length ? 1 : 0;
}

static void drop(struct pending *p, const char *why) {
    note_error(why);
    if (p->held_index >= 0)
        held[p->held_index] = -1; /* no longer held: check's compaction leaves it out */
    struct linger l = {1, 0};
    setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(p->fd);
    p->fd = -1;
}

static int start_connect(struct pending *p, long index) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note_error(strerror(errno));
        return -1;
    }
    int one = 1;
    /* The port is chosen at connect(2), for the whole 4-tuple, not at bind(2) for the address. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl((127u << 24) | (unsigned)(2 + index / per_addr));
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (void *)&src, sizeof src) < 0 ||
        (connect(fd, (void *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
        note_error(strerror(errno));
        close(fd);
        return -1;
    }
    p->fd = fd;
    p->held_index = -1;
    p->sent = 0;
    p->got = 0;
    p->started_ms = now_ms();
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = p};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int start_check(struct pending *p, size_t i) {
    p->fd = held[i];
    p->held_index = (int)i;
    p->sent = 0;
    p->got = 0;
    p->started_ms = now_ms();
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = p};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev) < 0) {
        drop(p, strerror(errno));
        return -1;
    }
    return 0;
}

/* Advances one connection on an event; returns 1 when it is done (answered or failed). */
static int step(struct pending *p, unsigned events, size_t *ok) {
    if (!p->sent && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            drop(p, strerror(err));
            return 1;
        }
        if (send(p->fd, REQUEST, sizeof REQUEST - 1, MSG_NOSIGNAL) != sizeof REQUEST - 1) {
            drop(p, "short send");
            return 1;
        }
        p->sent = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
        epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
        return 0;
    }
    if (p->sent && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        ssize_t n = recv(p->fd, p->buf + p->got, RESPONSE_MAX - p->got, 0);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN)
                return 0;
            drop(p, n == 0 ? "closed by the server" : strerror(errno));
            return 1;
        }
        p->got += (size_t)n;
        int state = response_state(p);
        if (state < 0) {
            drop(p, "not a 200 response");
            return 1;
        }
        if (state == 1) {
            epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
            (*ok)++;
            if (p->held_index < 0)
                held[nheld++] = p->fd;
            p->fd = -1;
            return 1;
        }
    }
    return 0;
}

/* Runs connections through the window: for `open`, count new ones; for `check`, every held
 * one. Returns how many were answered. */
static size_t run(int checking, size_t count) {
    size_t next = 0, done = 0, ok = 0, active = 0;
    struct epoll_event events[WINDOW];
    while (done < count) {
        for (int i = 0; i < WINDOW && next < count; i++) {
            if (window[i].fd >= 0)
                continue;
            int r = checking ? start_check(&window[i], next)
                             : start_connect(&window[i], first + (long)nheld + (long)active);
            next++;
            if (r < 0)
                done++;
            else
                active++;
        }
        int n = epoll_wait(ep, events, WINDOW, 100);
        for (int i = 0; i < n; i++) {
            struct pending *p = events[i].data.ptr;
            if (p->fd >= 0 && step(p, events[i].events, &ok)) {
                done++;
                active--;
            }
        }
        long long now = now_ms();
        for (int i = 0; i < WINDOW; i++) {
            if (window[i].fd >= 0 && now - window[i].started_ms > ANSWER_MS) {
                drop(&window[i], "no answer in 10 s");
                done++;
                active--;
            }
        }
    }
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: hold PORT FIRST PER_ADDR SECONDS\n");
        return 2;
    }
    port = atoi(argv[1]);
    first = atol(argv[2]);
    per_addr = atoi(argv[3]);
    alarm((unsigned)atoi(argv[4]));
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    capacity = lim.rlim_cur;
    held = calloc(capacity, sizeof *held);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!held || ep < 0 || per_addr <= 0) {
        perror("hold");
        return 1;
    }
    for (int i = 0; i < WINDOW; i++)
        window[i].fd = -1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        long k;
        first_error[0] = 0;
        if (sscanf(line, "open %ld", &k) == 1) {
            size_t room = capacity - nheld - 16; /* stdio, epoll and a margin */
            size_t want = k < 0 ? 0 : (size_t)k;
            if (want > room)
                want = room;
            size_t ok = run(0, want);
            printf("opened %zu %zu %s\n", nheld, (size_t)k - ok,
                   first_error[0] ? first_error : "-");
        } else if (strncmp(line, "check", 5) == 0) {
            size_t ok = run(1, nheld);
            size_t kept = 0;
            for (size_t i = 0; i < nheld; i++) /* drop() marked the failed ones -1 */
                if (held[i] >= 0)
                    held[kept++] = held[i];
            printf("answered %zu of %zu\n", ok, nheld);
            nheld = kept;
        } else {
            break;
        }
    }
    struct linger l = {1, 0};
    for (size_t i = 0; i < nheld; i++)
        setsockopt(held[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    return 0;
}
