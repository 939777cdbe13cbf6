/*
 * loadgen: the load generator of fullduplex's benchmark (bench/run.py drives it).
 *
 * One thread, epoll, non-blocking sockets. It opens N WebSocket connections to
 * ws://127.0.0.1:PORT/ (the upgrade is done here, with a fixed key whose accept value is
 * checked), then keeps K messages in flight on each: every echo that comes back is checked
 * (opcode, size and every byte) and replaced by a new message. Latency is the time from
 * queueing a message to receiving the last byte of its echo, FIFO per connection, kept in a
 * log-linear histogram (1.6 % resolution).
 *
 * Output is JSON, one object a line, on stdout:
 *   echo mode:  {"event":"measure_start"}  {"event":"measure_end"}  {"event":"result",...}
 *   idle mode:  {"event":"opened",...}      {"event":"result",...}
 * The harness samples the server's CPU time and RSS when it reads the first two lines.
 *
 * --deflate offers permessage-deflate (RFC 7692); the server must accept it. Messages are
 * then sent compressed (RSV1) and compressed echoes are inflated before they are checked.
 *
 * Build: cc -O2 -o bench/build/loadgen bench/loadgen.c -lz
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* RFC 6455 §1.3's example key and the accept value a server must answer it with. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xA

#define READ_CHUNK (256 * 1024)
#define MAX_RESPONSE_HEAD 8192

enum conn_state { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSING, C_CLOSED };
enum phase { P_OPENING, P_WARMUP, P_MEASURE, P_DRAIN, P_CLOSING, P_DONE };

typedef struct {
    uint64_t sent_ns;
    uint32_t offset; /* where in the payload pool the message was taken from */
} inflight_t;

typedef struct {
    int fd;
    int index;
    enum conn_state state;
    bool epollout_armed;
    /* output */
    uint8_t *out;
    size_t out_len, out_pos, out_cap;
    /* handshake response */
    char *head;
    size_t head_len;
    /* frame parser */
    uint8_t hdr[14];
    int hdr_len, hdr_need;
    uint64_t remaining;
    int opcode;
    bool fin;
    uint8_t ctl[125];
    int ctl_len;
    /* current message */
    bool in_message;
    int message_opcode;
    bool message_compressed;
    uint64_t message_len;
    /* messages in flight */
    inflight_t *fifo;
    int fifo_head, fifo_count;
    /* permessage-deflate */
    bool deflate;
    bool reset_deflater; /* client_no_context_takeover */
    z_stream deflater, inflater;
} conn_t;

/* --- options --------------------------------------------------------------------------- */
static int opt_port = 0;
static int opt_connections = 1;
static size_t opt_size = 32;
static int opt_pipeline = 1;
static bool opt_binary = false;
static double opt_warmup_s = 2.0;
static double opt_duration_s = 5.0;
static bool opt_deflate = false;
static bool opt_idle = false;
static double opt_hold_s = 3.0;
static int opt_open_concurrency = 100;
static double opt_open_timeout_s = 60.0;

/* --- state ----------------------------------------------------------------------------- */
static conn_t *conns;
static int epfd;
static enum phase phase = P_OPENING;
static int next_to_open = 0, opening = 0, opened = 0, closed_count = 0;
static uint64_t t_first_connect, t_all_open, t_measure_start, t_measure_end, t_phase_deadline;
static uint64_t measured_messages = 0, measured_bytes = 0, latency_sum_ns = 0;
static uint64_t compressed_echoes = 0; /* with --deflate: echoes the server compressed */
static uint64_t errors = 0;
static char first_error[256] = "";
static uint8_t *pool;
static size_t pool_len;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint8_t read_buf[READ_CHUNK];
static uint8_t *deflate_buf;
static size_t deflate_buf_len;
static uint8_t inflate_buf[64 * 1024];

#define SUB_BITS 6
#define SUB_COUNT (1 << SUB_BITS)
static uint64_t histogram[64 * SUB_COUNT];
static uint64_t latency_max_ns = 0;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_random(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void record_error(conn_t *c, const char *fmt, ...) {
    errors++;
    if (first_error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        int n = snprintf(first_error, sizeof first_error, "connection %d: ", c ? c->index : -1);
        vsnprintf(first_error + n, sizeof first_error - n, fmt, ap);
        va_end(ap);
        /* Keep the message printable inside a JSON string. */
        for (char *p = first_error; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '\'';
    }
}

/* --- latency histogram ----------------------------------------------------------------- */
static inline int bucket_of(uint64_t v) {
    if (v < SUB_COUNT) return (int)v;
    int e = 63 - __builtin_clzll(v);
    return ((e - SUB_BITS + 1) << SUB_BITS) + (int)((v >> (e - SUB_BITS)) & (SUB_COUNT - 1));
}

static double bucket_middle(int index) {
    if (index < SUB_COUNT) return index;
    int group = index >> SUB_BITS, sub = index & (SUB_COUNT - 1);
    double low = (double)((uint64_t)(SUB_COUNT + sub) << (group - 1));
    return low + (double)(1ull << (group - 1)) / 2.0;
}

static double percentile_us(double fraction) {
    if (measured_messages == 0) return 0.0;
    uint64_t rank = (uint64_t)(fraction * (double)measured_messages);
    if (rank >= measured_messages) rank = measured_messages - 1;
    uint64_t seen = 0;
    for (int i = 0; i < 64 * SUB_COUNT; i++) {
        seen += histogram[i];
        if (seen > rank) return bucket_middle(i) / 1000.0;
    }
    return latency_max_ns / 1000.0;
}

/* --- output ---------------------------------------------------------------------------- */
static void out_reserve(conn_t *c, size_t extra) {
    if (c->out_pos > 0 && c->out_pos == c->out_len) c->out_pos = c->out_len = 0;
    if (c->out_len + extra <= c->out_cap) return;
    if (c->out_pos > 0) {
        memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
        c->out_len -= c->out_pos;
        c->out_pos = 0;
        if (c->out_len + extra <= c->out_cap) return;
    }
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + extra) cap *= 2;
    c->out = realloc(c->out, cap);
    if (!c->out) fail("out of memory");
    c->out_cap = cap;
}

static void set_epollout(conn_t *c, bool on) {
    if (c->epollout_armed == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    c->epollout_armed = on;
}

static void close_conn(conn_t *c);

static void flush_out(conn_t *c) {
    while (c->out_pos < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_pos += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_epollout(c, true);
            return;
        }
        if (n < 0 && errno == EINTR) continue;
        if (c->state != C_CLOSING) record_error(c, "send failed: %s", strerror(errno));
        close_conn(c);
        return;
    }
    c->out_pos = c->out_len = 0;
    if (c->epollout_armed) set_epollout(c, false);
}

typedef uint8_t bytes16 __attribute__((vector_size(16)));

/* XOR with the 4-byte key, 64 bytes a step: masking is the generator's main per-byte cost. */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t len, uint32_t key) {
    bytes16 key16;
    for (int i = 0; i < 16; i += 4) memcpy((uint8_t *)&key16 + i, &key, 4);
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
        bytes16 a, b, c, d;
        memcpy(&a, src + i, 16);
        memcpy(&b, src + i + 16, 16);
        memcpy(&c, src + i + 32, 16);
        memcpy(&d, src + i + 48, 16);
        a ^= key16, b ^= key16, c ^= key16, d ^= key16;
        memcpy(dst + i, &a, 16);
        memcpy(dst + i + 16, &b, 16);
        memcpy(dst + i + 32, &c, 16);
        memcpy(dst + i + 48, &d, 16);
    }
    const uint8_t *k = (const uint8_t *)&key;
    for (; i < len; i++) dst[i] = src[i] ^ k[i & 3];
}

/* Queue one masked frame (RFC 6455 §5.3: a client MUST mask every frame it sends). */
static void queue_frame(conn_t *c, int opcode, bool rsv1, const uint8_t *payload, size_t len) {
    out_reserve(c, len + 14);
    uint8_t *h = c->out + c->out_len;
    size_t n = 0;
    h[n++] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | opcode);
    if (len < 126) {
        h[n++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8) h[n++] = (uint8_t)(len >> shift);
    }
    uint32_t key = (uint32_t)next_random();
    memcpy(h + n, &key, 4);
    n += 4;
    mask_copy(h + n, payload, len, key);
    c->out_len += n + len;
}

static void send_message(conn_t *c) {
    uint32_t offset = (uint32_t)(next_random() % (pool_len - opt_size + 1));
    const uint8_t *data = pool + offset;
    int opcode = opt_binary ? OP_BINARY : OP_TEXT;
    if (c->deflate) {
        /* RFC 7692 §7.2.1: compress, flush to a byte boundary, drop the 00 00 ff ff tail. */
        z_stream *z = &c->deflater;
        z->next_in = (Bytef *)data;
        z->avail_in = (uInt)opt_size;
        z->next_out = deflate_buf;
        z->avail_out = (uInt)deflate_buf_len;
        if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0) fail("deflate failed");
        size_t len = deflate_buf_len - z->avail_out;
        if (len < 4 || memcmp(deflate_buf + len - 4, "\x00\x00\xff\xff", 4) != 0)
            fail("deflate output lacks its sync-flush tail");
        queue_frame(c, opcode, true, deflate_buf, len - 4);
        if (c->reset_deflater) deflateReset(z);
    } else {
        queue_frame(c, opcode, false, data, opt_size);
    }
    int slot = (c->fifo_head + c->fifo_count) % opt_pipeline;
    c->fifo[slot].sent_ns = now_ns();
    c->fifo[slot].offset = offset;
    c->fifo_count++;
}

static void send_close(conn_t *c) {
    static const uint8_t normal_closure[2] = {0x03, 0xE8}; /* 1000 */
    queue_frame(c, OP_CLOSE, false, normal_closure, 2);
    c->state = C_CLOSING;
    flush_out(c);
}

/* --- connections ----------------------------------------------------------------------- */
static void close_conn(conn_t *c) {
    if (c->state == C_CLOSED || c->state == C_IDLE) return;
    bool was_opening = c->state == C_CONNECTING || c->state == C_HANDSHAKE;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = C_CLOSED;
    closed_count++;
    if (was_opening) opening--;
    free(c->out);
    c->out = NULL;
    c->out_cap = c->out_len = c->out_pos = 0;
    free(c->head);
    c->head = NULL;
    if (c->deflate) {
        deflateEnd(&c->deflater);
        inflateEnd(&c->inflater);
        c->deflate = false;
    }
}

static void start_connect(conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket: %s (raise the open-files limit?)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = fd;
    c->state = C_CONNECTING;
    opening++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->epollout_armed = true;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        record_error(c, "connect: %s", strerror(errno));
        close_conn(c);
    }
}

static void open_more(void) {
    while (next_to_open < opt_connections && opening < opt_open_concurrency)
        start_connect(&conns[next_to_open++]);
}

static void send_request(conn_t *c) {
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET / HTTP/1.1\r\n"
                     "Host: 127.0.0.1:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s"
                     "\r\n",
                     opt_port,
                     opt_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
    out_reserve(c, (size_t)n);
    memcpy(c->out + c->out_len, request, (size_t)n);
    c->out_len += (size_t)n;
    c->state = C_HANDSHAKE;
    flush_out(c);
}

/* Find a header's value in a response head (names are case-insensitive). */
static bool header_value(const char *head, const char *name, char *value, size_t value_size) {
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (*v == ' ' || *v == '\t') v++;
            const char *end = strstr(v, "\r\n");
            size_t len = end ? (size_t)(end - v) : strlen(v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
            if (len >= value_size) len = value_size - 1;
            memcpy(value, v, len);
            value[len] = '\0';
            return true;
        }
    }
    return false;
}

static void start_messages(conn_t *c) {
    for (int i = 0; i < opt_pipeline; i++) send_message(c);
    flush_out(c);
}

static void handle_bytes(conn_t *c, const uint8_t *p, size_t n);

static void on_handshake_complete(conn_t *c) {
    c->state = C_OPEN;
    opening--;
    opened++;
    t_all_open = now_ns();
}

static bool accept_response(conn_t *c) {
    char value[512];
    if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr(c->head, "\r\n");
        if (eol) *eol = '\0';
        record_error(c, "handshake refused: %s", c->head);
        return false;
    }
    if (!header_value(c->head, "Sec-WebSocket-Accept", value, sizeof value) || strcmp(value, WS_ACCEPT) != 0) {
        record_error(c, "bad Sec-WebSocket-Accept");
        return false;
    }
    if (!opt_deflate) return true;
    if (!header_value(c->head, "Sec-WebSocket-Extensions", value, sizeof value) ||
        strncasecmp(value, "permessage-deflate", 18) != 0) {
        record_error(c, "the server did not accept permessage-deflate");
        return false;
    }
    int window_bits = 15;
    char *bits = strcasestr(value, "client_max_window_bits=");
    if (bits) window_bits = atoi(bits + strlen("client_max_window_bits="));
    if (window_bits < 9) window_bits = 9; /* zlib cannot write raw 8-bit windows */
    c->reset_deflater = strcasestr(value, "client_no_context_takeover") != NULL;
    memset(&c->deflater, 0, sizeof c->deflater);
    memset(&c->inflater, 0, sizeof c->inflater);
    if (deflateInit2(&c->deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
        inflateInit2(&c->inflater, -15) != Z_OK)
        fail("zlib init failed");
    c->deflate = true;
    return true;
}

static void handle_response(conn_t *c, const uint8_t *p, size_t n) {
    if (c->head == NULL) c->head = malloc(MAX_RESPONSE_HEAD + 1);
    size_t room = MAX_RESPONSE_HEAD - c->head_len;
    size_t take = n < room ? n : room;
    memcpy(c->head + c->head_len, p, take);
    c->head_len += take;
    c->head[c->head_len] = '\0';
    char *end = strstr(c->head, "\r\n\r\n");
    if (!end) {
        if (c->head_len >= MAX_RESPONSE_HEAD) {
            record_error(c, "handshake response head too large");
            close_conn(c);
        }
        return;
    }
    size_t head_size = (size_t)(end - c->head) + 4;
    end[2] = '\0';
    if (!accept_response(c)) {
        close_conn(c);
        return;
    }
    /* Bytes after the head are already frames. */
    uint8_t extra[MAX_RESPONSE_HEAD];
    size_t leftover = c->head_len - head_size;
    memcpy(extra, c->head + head_size, leftover);
    free(c->head);
    c->head = NULL;
    c->head_len = 0;
    on_handshake_complete(c);
    if (leftover) handle_bytes(c, extra, leftover);
    if (take < n && c->state == C_OPEN) handle_bytes(c, p + take, n - take);
}

/* --- incoming frames ------------------------------------------------------------------- */
static bool measuring(uint64_t t) { return phase == P_MEASURE && t >= t_measure_start; }

static void check_echo_bytes(conn_t *c, const uint8_t *p, size_t n) {
    if (c->fifo_count == 0) return; /* reported when the message ends */
    if (c->message_len + n > opt_size) {
        c->message_len += n;
        return;
    }
    const uint8_t *expected = pool + c->fifo[c->fifo_head].offset + c->message_len;
    if (memcmp(expected, p, n) != 0) record_error(c, "echoed payload differs from what was sent");
    c->message_len += n;
}

static void on_data(conn_t *c, const uint8_t *p, size_t n) {
    if (!c->message_compressed) {
        check_echo_bytes(c, p, n);
        return;
    }
    z_stream *z = &c->inflater;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    do {
        z->next_out = inflate_buf;
        z->avail_out = sizeof inflate_buf;
        int rc = inflate(z, Z_SYNC_FLUSH);
        size_t produced = sizeof inflate_buf - z->avail_out;
        if (produced) check_echo_bytes(c, inflate_buf, produced);
        if (rc == Z_STREAM_END) {
            inflateReset(z);
        } else if (rc == Z_BUF_ERROR) {
            break;
        } else if (rc != Z_OK) {
            record_error(c, "inflate failed: %d", rc);
            close_conn(c);
            return;
        }
    } while (z->avail_in > 0 || z->avail_out == 0);
}

static void on_message_complete(conn_t *c) {
    uint64_t t = now_ns();
    if (c->fifo_count == 0) {
        record_error(c, "received a message that was not sent");
        return;
    }
    int expected_opcode = opt_binary ? OP_BINARY : OP_TEXT;
    if (c->message_opcode != expected_opcode)
        record_error(c, "echo has opcode %d, sent %d", c->message_opcode, expected_opcode);
    if (c->message_len != opt_size)
        record_error(c, "echo has %llu bytes, sent %zu", (unsigned long long)c->message_len, opt_size);
    inflight_t *sent = &c->fifo[c->fifo_head];
    c->fifo_head = (c->fifo_head + 1) % opt_pipeline;
    c->fifo_count--;
    if (measuring(t)) {
        uint64_t latency = t - sent->sent_ns;
        histogram[bucket_of(latency)]++;
        latency_sum_ns += latency;
        if (latency > latency_max_ns) latency_max_ns = latency;
        measured_messages++;
        measured_bytes += opt_size;
        if (c->message_compressed) compressed_echoes++;
    }
    if (phase == P_WARMUP || phase == P_MEASURE) send_message(c);
}

static void on_frame_complete(conn_t *c) {
    int op = c->opcode;
    if (op == OP_PING) {
        queue_frame(c, OP_PONG, false, c->ctl, (size_t)c->ctl_len);
    } else if (op == OP_CLOSE) {
        if (c->state != C_CLOSING) {
            int code = c->ctl_len >= 2 ? (c->ctl[0] << 8 | c->ctl[1]) : 1005;
            record_error(c, "the server closed the connection with %d: %.*s", code,
                         c->ctl_len > 2 ? c->ctl_len - 2 : 0, (const char *)c->ctl + 2);
        }
        close_conn(c);
    } else if (op == OP_PONG) {
        /* unsolicited pongs are allowed (RFC 6455 §5.5.3) */
    } else if (c->fin) {
        if (c->message_compressed) {
            static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
            on_data(c, tail, 4);
            if (c->state == C_CLOSED) return;
        }
        c->in_message = false;
        on_message_complete(c);
    }
}

static bool parse_header(conn_t *c) {
    uint8_t b0 = c->hdr[0], b1 = c->hdr[1];
    c->fin = b0 & 0x80;
    c->opcode = b0 & 0x0F;
    bool rsv1 = b0 & 0x40;
    if (b1 & 0x80) {
        record_error(c, "the server sent a masked frame");
        return false;
    }
    uint64_t len = b1 & 0x7F;
    if (len == 126) len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
    else if (len == 127) {
        len = 0;
        for (int i = 2; i < 10; i++) len = len << 8 | c->hdr[i];
    }
    c->remaining = len;
    c->ctl_len = 0;
    if (c->opcode >= 0x8) {
        if (len > 125 || !c->fin) {
            record_error(c, "bad control frame");
            return false;
        }
    } else if (c->opcode == OP_CONT) {
        if (!c->in_message) {
            record_error(c, "unexpected continuation frame");
            return false;
        }
    } else {
        if (c->in_message) {
            record_error(c, "new message before the last one ended");
            return false;
        }
        if (rsv1 && !c->deflate) {
            record_error(c, "RSV1 set without permessage-deflate");
            return false;
        }
        c->in_message = true;
        c->message_opcode = c->opcode;
        c->message_compressed = rsv1;
        c->message_len = 0;
    }
    return true;
}

static void handle_bytes(conn_t *c, const uint8_t *p, size_t n) {
    const uint8_t *end = p + n;
    while (p < end && c->state >= C_OPEN && c->state != C_CLOSED) {
        if (c->hdr_need == 0) {
            c->hdr_len = 0;
            c->hdr_need = 2;
        }
        if (c->hdr_len < c->hdr_need) {
            while (p < end && c->hdr_len < c->hdr_need) {
                c->hdr[c->hdr_len++] = *p++;
                if (c->hdr_len == 2) {
                    int code = c->hdr[1] & 0x7F;
                    c->hdr_need = 2 + (code == 126 ? 2 : code == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
                }
            }
            if (c->hdr_len < c->hdr_need) return;
            if (!parse_header(c)) {
                close_conn(c);
                return;
            }
        }
        size_t take = (size_t)(end - p) < c->remaining ? (size_t)(end - p) : (size_t)c->remaining;
        if (take) {
            if (c->opcode >= 0x8) {
                memcpy(c->ctl + c->ctl_len, p, take);
                c->ctl_len += (int)take;
            } else {
                on_data(c, p, take);
                if (c->state == C_CLOSED) return;
            }
            p += take;
            c->remaining -= take;
        }
        if (c->remaining == 0) {
            c->hdr_need = 0; /* the next byte starts a header */
            on_frame_complete(c);
        }
    }
}

static void on_readable(conn_t *c) {
    ssize_t n = recv(c->fd, read_buf, sizeof read_buf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (c->state != C_CLOSING) record_error(c, "recv failed: %s", strerror(errno));
        close_conn(c);
        return;
    }
    if (n == 0) {
        if (c->state != C_CLOSING) record_error(c, "the server closed the TCP connection");
        close_conn(c);
        return;
    }
    if (c->state == C_HANDSHAKE) {
        handle_response(c, read_buf, (size_t)n);
    } else {
        handle_bytes(c, read_buf, (size_t)n);
    }
    if (c->state != C_CLOSED && c->out_len > c->out_pos) flush_out(c);
}

static void on_event(conn_t *c, uint32_t events) {
    if (c->state == C_CONNECTING) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            record_error(c, "connect: %s", strerror(err ? err : ECONNREFUSED));
            close_conn(c);
            return;
        }
        if (events & EPOLLOUT) send_request(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    if (c->state != C_CLOSED && (events & EPOLLOUT)) flush_out(c);
}

/* --- payloads -------------------------------------------------------------------------- */
static void make_pool(void) {
    pool_len = opt_size * 2 > (1u << 20) ? opt_size * 2 : (1u << 20);
    pool = malloc(pool_len);
    if (!pool) fail("out of memory");
    if (opt_binary) {
        for (size_t i = 0; i < pool_len; i++) pool[i] = (uint8_t)(next_random() >> 56);
        return;
    }
    /* Text: ASCII words over a small alphabet, so that deflate has something to find. */
    static const char letters[] = "etaoinshrdlucmfwypvbgk";
    for (size_t i = 0; i < pool_len; i++) {
        uint64_t r = next_random();
        pool[i] = (r & 7) == 0 ? ' ' : (uint8_t)letters[(r >> 8) % (sizeof letters - 1)];
    }
}

/* --- main loop ------------------------------------------------------------------------- */
static void print_result(void) {
    double seconds = (double)(t_measure_end - t_measure_start) / 1e9;
    printf("{\"event\":\"result\",\"mode\":\"echo\",\"connections\":%d,\"size\":%zu,\"pipeline\":%d,"
           "\"binary\":%s,\"deflate\":%s,\"measured_s\":%.3f,\"messages\":%llu,"
           "\"msgs_per_s\":%.1f,\"bytes_per_s\":%.1f,"
           "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f,\"mean\":%.1f},"
           "\"compressed_echoes\":%llu,\"errors\":%llu,\"first_error\":\"%s\"}\n",
           opt_connections, opt_size, opt_pipeline, opt_binary ? "true" : "false",
           opt_deflate ? "true" : "false", seconds, (unsigned long long)measured_messages,
           seconds > 0 ? (double)measured_messages / seconds : 0.0,
           seconds > 0 ? (double)measured_bytes / seconds : 0.0, percentile_us(0.50),
           percentile_us(0.90), percentile_us(0.99), percentile_us(0.999), latency_max_ns / 1000.0,
           measured_messages ? (double)latency_sum_ns / (double)measured_messages / 1000.0 : 0.0,
           (unsigned long long)compressed_echoes, (unsigned long long)errors, first_error);
    fflush(stdout);
}

static void begin_closing(void) {
    phase = P_CLOSING;
    t_phase_deadline = now_ns() + 5000000000ull;
    for (int i = 0; i < opt_connections; i++)
        if (conns[i].state == C_OPEN) send_close(&conns[i]);
}

static bool all_drained(void) {
    for (int i = 0; i < opt_connections; i++)
        if (conns[i].state == C_OPEN && conns[i].fifo_count > 0) return false;
    return true;
}

static void advance_phase(uint64_t t) {
    if (phase == P_OPENING) {
        if (next_to_open < opt_connections) open_more();
        if (opening > 0 || next_to_open < opt_connections) {
            if (t - t_first_connect > (uint64_t)(opt_open_timeout_s * 1e9))
                fail("opened %d of %d connections in %.0f s", opened, opt_connections, opt_open_timeout_s);
            return;
        }
        if (opened == 0) {
            printf("{\"event\":\"result\",\"mode\":\"%s\",\"connections\":0,\"errors\":%llu,\"first_error\":\"%s\"}\n",
                   opt_idle ? "idle" : "echo", (unsigned long long)errors, first_error);
            exit(1);
        }
        if (opt_idle) {
            double open_s = (double)(t_all_open - t_first_connect) / 1e9;
            printf("{\"event\":\"opened\",\"connections\":%d,\"open_s\":%.4f,\"errors\":%llu}\n", opened, open_s,
                   (unsigned long long)errors);
            fflush(stdout);
            phase = P_MEASURE;
            t_phase_deadline = t + (uint64_t)(opt_hold_s * 1e9);
            return;
        }
        phase = P_WARMUP;
        t_phase_deadline = t + (uint64_t)(opt_warmup_s * 1e9);
        for (int i = 0; i < opt_connections; i++)
            if (conns[i].state == C_OPEN) start_messages(&conns[i]);
        return;
    }
    if (t < t_phase_deadline && phase != P_DRAIN && phase != P_CLOSING) return;
    switch (phase) {
    case P_WARMUP:
        phase = P_MEASURE;
        t_measure_start = now_ns();
        t_phase_deadline = t_measure_start + (uint64_t)(opt_duration_s * 1e9);
        printf("{\"event\":\"measure_start\"}\n");
        fflush(stdout);
        break;
    case P_MEASURE:
        if (opt_idle) {
            begin_closing();
            break;
        }
        t_measure_end = now_ns();
        printf("{\"event\":\"measure_end\"}\n");
        fflush(stdout);
        phase = P_DRAIN;
        t_phase_deadline = t + 5000000000ull;
        break;
    case P_DRAIN:
        if (all_drained() || t >= t_phase_deadline) begin_closing();
        break;
    case P_CLOSING:
        if (closed_count >= opt_connections || t >= t_phase_deadline) phase = P_DONE;
        break;
    default:
        break;
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port PORT [--connections N] [--size BYTES] [--pipeline K] [--binary]\n"
            "               [--warmup S] [--duration S] [--deflate]\n"
            "       loadgen --port PORT --idle --connections N [--hold S] [--open-concurrency C]\n");
    exit(2);
}

int main(int argc, char **argv) {
    static struct option options[] = {
        {"port", required_argument, 0, 'p'},       {"connections", required_argument, 0, 'c'},
        {"size", required_argument, 0, 's'},       {"pipeline", required_argument, 0, 'k'},
        {"binary", no_argument, 0, 'b'},           {"warmup", required_argument, 0, 'w'},
        {"duration", required_argument, 0, 'd'},   {"deflate", no_argument, 0, 'z'},
        {"idle", no_argument, 0, 'i'},             {"hold", required_argument, 0, 'h'},
        {"open-concurrency", required_argument, 0, 'o'}, {"open-timeout", required_argument, 0, 't'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p': opt_port = atoi(optarg); break;
        case 'c': opt_connections = atoi(optarg); break;
        case 's': opt_size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'k': opt_pipeline = atoi(optarg); break;
        case 'b': opt_binary = true; break;
        case 'w': opt_warmup_s = atof(optarg); break;
        case 'd': opt_duration_s = atof(optarg); break;
        case 'z': opt_deflate = true; break;
        case 'i': opt_idle = true; break;
        case 'h': opt_hold_s = atof(optarg); break;
        case 'o': opt_open_concurrency = atoi(optarg); break;
        case 't': opt_open_timeout_s = atof(optarg); break;
        default: usage();
        }
    }
    if (opt_port <= 0 || opt_connections <= 0 || opt_pipeline <= 0 || opt_size == 0 || opt_open_concurrency <= 0)
        usage();

    signal(SIGPIPE, SIG_IGN);
    /* A hard stop in case anything hangs: the harness has its own timeout too. */
    alarm((unsigned)(opt_open_timeout_s + opt_warmup_s + opt_duration_s + opt_hold_s + 30));
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }

    make_pool();
    deflate_buf_len = opt_size + opt_size / 8 + 1024;
    deflate_buf = malloc(deflate_buf_len);
    conns = calloc((size_t)opt_connections, sizeof *conns);
    if (!conns || !deflate_buf) fail("out of memory");
    for (int i = 0; i < opt_connections; i++) {
        conns[i].index = i;
        conns[i].fd = -1;
        conns[i].fifo = calloc((size_t)opt_pipeline, sizeof(inflight_t));
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) fail("epoll_create1: %s", strerror(errno));

    t_first_connect = now_ns();
    open_more();
    struct epoll_event events[1024];
    while (phase != P_DONE) {
        int timeout_ms = 1;
        if (phase == P_MEASURE || phase == P_WARMUP) {
            uint64_t t = now_ns();
            timeout_ms = t >= t_phase_deadline ? 0 : (int)((t_phase_deadline - t) / 1000000) + 1;
            if (timeout_ms > 10) timeout_ms = 10;
        }
        int n = epoll_wait(epfd, events, 1024, timeout_ms);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) on_event(events[i].data.ptr, events[i].events);
        advance_phase(now_ns());
    }
    if (opt_idle) {
        printf("{\"event\":\"result\",\"mode\":\"idle\",\"connections\":%d,\"open_s\":%.4f,\"errors\":%llu,"
               "\"first_error\":\"%s\"}\n",
               opened, (double)(t_all_open - t_first_connect) / 1e9, (unsigned long long)errors, first_error);
    } else {
        print_result();
    }
    return 0;
}
