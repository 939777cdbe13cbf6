/*
 * echo_server: a minimal WebSocket echo server in C, the fixed peer of benchmark cell (h),
 * where the Python clients are what is measured.
 *
 * One thread, epoll, non-blocking sockets, no extensions. It echoes frame by frame: each
 * data frame goes back with the same opcode and FIN bit, unmasked as RFC 6455 §5.1 requires
 * of a server, so fragmented messages come back fragmented the same way. Pings get pongs, a
 * close frame gets its close frame back. It checks what an echo needs (masking, control
 * frame sizes, no RSV bits) and not UTF-8: it is a test peer, not a server to copy.
 *
 * Usage: echo_server [--port PORT]   (0, the default, picks a free port)
 * Prints "ready PORT" on stdout once it listens; SIGTERM stops it.
 * Build: cc -O2 -o bench/build/echo_server bench/echo_server.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)
#define MAX_REQUEST_HEAD 8192
/* Stop reading from a client that does not read its echoes past this many buffered bytes. */
#define HIGH_WATER (4 * 1024 * 1024)

enum state { S_HANDSHAKE, S_OPEN, S_CLOSING };

typedef struct {
    int fd;
    enum state state;
    bool reading, writing;
    char head[MAX_REQUEST_HEAD + 1];
    size_t head_len;
    uint8_t *out;
    size_t out_len, out_pos, out_cap;
    uint8_t hdr[14];
    int hdr_len, hdr_need;
    uint64_t remaining;
    uint8_t mask[4];
    uint64_t mask_offset;
    bool discard;       /* a pong: read and dropped */
    bool close_pending; /* a close frame is being echoed; then the connection closes */
} conn_t;

static int epfd;
static volatile sig_atomic_t stopping = 0;
static uint8_t read_buf[READ_CHUNK];

/* --- SHA-1 (RFC 3174), for Sec-WebSocket-Accept only ------------------------------------ */
static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const uint8_t *data, size_t len, uint8_t digest[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t padded = ((len + 8) / 64 + 1) * 64;
    uint8_t *msg = calloc(padded, 1);
    memcpy(msg, data, len);
    msg[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) msg[padded - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t block = 0; block < padded; block += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)msg[block + 4 * i] << 24 | (uint32_t)msg[block + 4 * i + 1] << 16 |
                   (uint32_t)msg[block + 4 * i + 2] << 8 | msg[block + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    free(msg);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) digest[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

static void base64(const uint8_t *in, size_t len, char *out) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = table[(v >> 18) & 63];
        out[o++] = table[(v >> 12) & 63];
        out[o++] = i + 1 < len ? table[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? table[v & 63] : '=';
    }
    out[o] = '\0';
}

/* --- connections ----------------------------------------------------------------------- */
static void update_events(conn_t *c) {
    struct epoll_event ev = {.events = (c->reading ? EPOLLIN : 0) | (c->writing ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void drop(conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

static uint8_t *out_reserve(conn_t *c, size_t extra) {
    if (c->out_pos > 0 && c->out_pos == c->out_len) c->out_pos = c->out_len = 0;
    if (c->out_len + extra > c->out_cap) {
        if (c->out_pos > 0) {
            memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
            c->out_len -= c->out_pos;
            c->out_pos = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < c->out_len + extra) cap *= 2;
        if (cap != c->out_cap) {
            c->out = realloc(c->out, cap);
            if (!c->out) abort();
            c->out_cap = cap;
        }
    }
    return c->out + c->out_len;
}

/* Returns false when the connection is gone. */
static bool flush_out(conn_t *c) {
    while (c->out_pos < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_pos += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            drop(c);
            return false;
        }
    }
    bool pending = c->out_pos < c->out_len;
    if (!pending && c->state == S_CLOSING) {
        drop(c);
        return false;
    }
    bool reading = c->state != S_CLOSING && c->out_len - c->out_pos < HIGH_WATER;
    if (pending != c->writing || reading != c->reading) {
        c->writing = pending;
        c->reading = reading;
        update_events(c);
    }
    return true;
}

static bool handle_request(conn_t *c, const uint8_t *p, size_t n, size_t *consumed) {
    size_t room = MAX_REQUEST_HEAD - c->head_len;
    size_t take = n < room ? n : room;
    memcpy(c->head + c->head_len, p, take);
    c->head_len += take;
    c->head[c->head_len] = '\0';
    char *end = strstr(c->head, "\r\n\r\n");
    if (!end) {
        *consumed = n;
        return c->head_len < MAX_REQUEST_HEAD;
    }
    size_t head_size = (size_t)(end - c->head) + 4;
    *consumed = take - (c->head_len - head_size);
    end[2] = '\0';
    const char *key = NULL;
    size_t key_len = 0;
    for (char *line = strstr(c->head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "Sec-WebSocket-Key:", 18) == 0) {
            key = line + 18;
            while (*key == ' ') key++;
            key_len = strcspn(key, " \r\n");
        }
    }
    if (strncmp(c->head, "GET ", 4) != 0 || key == NULL || key_len == 0 || key_len > 64) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        memcpy(out_reserve(c, sizeof bad - 1), bad, sizeof bad - 1);
        c->out_len += sizeof bad - 1;
        c->state = S_CLOSING;
        return true;
    }
    char keyed[128];
    memcpy(keyed, key, key_len);
    memcpy(keyed + key_len, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    uint8_t digest[20];
    sha1((const uint8_t *)keyed, key_len + 36, digest);
    char accept[32];
    base64(digest, 20, accept);
    char response[256];
    int len = snprintf(response, sizeof response,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\n\r\n",
                       accept);
    memcpy(out_reserve(c, (size_t)len), response, (size_t)len);
    c->out_len += (size_t)len;
    c->state = S_OPEN;
    return true;
}

static void write_header(conn_t *c, uint8_t b0, uint64_t len) {
    uint8_t *h = out_reserve(c, 10);
    size_t n = 0;
    h[n++] = b0;
    if (len < 126) {
        h[n++] = (uint8_t)len;
    } else if (len < 65536) {
        h[n++] = 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = 127;
        for (int shift = 56; shift >= 0; shift -= 8) h[n++] = (uint8_t)(len >> shift);
    }
    c->out_len += n;
}

/* Returns false on a protocol error. */
static bool on_header(conn_t *c) {
    uint8_t b0 = c->hdr[0], b1 = c->hdr[1];
    int opcode = b0 & 0x0F;
    if ((b0 & 0x70) || !(b1 & 0x80)) return false; /* RSV bits without extension; unmasked */
    uint64_t len = b1 & 0x7F;
    int at = 2;
    if (len == 126) {
        len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
        at = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 2; i < 10; i++) len = len << 8 | c->hdr[i];
        at = 10;
    }
    memcpy(c->mask, c->hdr + at, 4);
    c->mask_offset = 0;
    c->remaining = len;
    c->discard = false;
    if (opcode >= 0x8 && (len > 125 || !(b0 & 0x80))) return false;
    if (opcode == 0x9) {
        write_header(c, 0x8A, len); /* pong */
    } else if (opcode == 0xA) {
        c->discard = true;
    } else if (opcode == 0x8) {
        write_header(c, 0x88, len);
        c->close_pending = true;
    } else if (opcode <= 0x2) {
        write_header(c, b0, len);
    } else {
        return false;
    }
    return true;
}

static void unmask_into(conn_t *c, const uint8_t *p, size_t n) {
    uint8_t *dst = out_reserve(c, n);
    size_t i = 0;
    size_t phase = c->mask_offset & 3;
    uint8_t key[8];
    for (int j = 0; j < 8; j++) key[j] = c->mask[(phase + (size_t)j) & 3];
    uint64_t key64;
    memcpy(&key64, key, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= key64;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++) dst[i] = p[i] ^ key[i & 7];
    c->out_len += n;
    c->mask_offset += n;
}

/* Returns false when the connection should be dropped. */
static bool handle_frames(conn_t *c, const uint8_t *p, size_t n) {
    const uint8_t *end = p + n;
    while (p < end && c->state == S_OPEN) {
        if (c->hdr_need == 0) {
            c->hdr_len = 0;
            c->hdr_need = 2;
        }
        if (c->hdr_len < c->hdr_need) {
            while (p < end && c->hdr_len < c->hdr_need) {
                c->hdr[c->hdr_len++] = *p++;
                if (c->hdr_len == 2) {
                    int code = c->hdr[1] & 0x7F;
                    c->hdr_need = 2 + (code == 126 ? 2 : code == 127 ? 8 : 0) + 4;
                }
            }
            if (c->hdr_len < c->hdr_need) return true;
            if (!on_header(c)) return false;
        }
        size_t take = (size_t)(end - p) < c->remaining ? (size_t)(end - p) : (size_t)c->remaining;
        if (take && !c->discard) unmask_into(c, p, take);
        p += take;
        c->remaining -= take;
        if (c->remaining == 0) {
            c->hdr_need = 0;
            if (c->close_pending) c->state = S_CLOSING;
        }
    }
    return true;
}

static void on_readable(conn_t *c) {
    ssize_t n = recv(c->fd, read_buf, sizeof read_buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(c);
        return;
    }
    if (n < 0) return;
    const uint8_t *p = read_buf;
    size_t left = (size_t)n;
    if (c->state == S_HANDSHAKE) {
        size_t consumed;
        if (!handle_request(c, p, left, &consumed)) {
            drop(c);
            return;
        }
        p += consumed;
        left -= consumed;
    }
    if (c->state == S_OPEN && left && !handle_frames(c, p, left)) {
        drop(c);
        return;
    }
    flush_out(c);
}

static void on_stop(int sig) {
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv) {
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: echo_server [--port PORT]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction stop = {.sa_handler = on_stop};
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0) {
        perror("echo_server: bind/listen");
        return 1;
    }
    socklen_t addr_len = sizeof addr;
    getsockname(listener, (struct sockaddr *)&addr, &addr_len);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    printf("ready %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event events[512];
    while (!stopping) {
        int n = epoll_wait(epfd, events, 512, 200);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    nc->reading = true;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            uint32_t e = events[i].events;
            if (e & EPOLLOUT) {
                if (!flush_out(c)) continue;
            }
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (c->reading || (e & (EPOLLERR | EPOLLHUP))) on_readable(c);
            }
        }
    }
    return 0;
}
