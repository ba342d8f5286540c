/*
 * nfq-delay: latency and loss on a host's link where the kernel has no sch_netem.
 *
 * An nf_tables rule in the host's network namespace (prerouting, input device DEV) sends every
 * IPv4 packet arriving on DEV to an NFQUEUE; this program, in the same namespace, reads each
 * packet's id (copy mode META: no payload; GSO super-packets are not segmented), holds it until
 * its arrival plus DELAY, then accepts it, or drops it at once with probability LOSS (seeded,
 * reproducible). Every host doing so, each direction of a link is delayed once: the round trip
 * between two hosts grows by 2 x DELAY, as with `netem delay DELAY loss LOSS` on each host's
 * egress.
 *
 *   nfq-delay run --delay 1ms [--loss 0.5%] [--seed 1] [--queue 7] [--max-held 4096]
 *                 [--limit 3600] [--pidfile FILE]
 *   nfq-delay rule-add [--queue 7] [--dev eth0] [--bypass 0|1]   # start `run` first: see "no bypass" below
 *   nfq-delay rule-del
 *
 * Why on arrival, not on departure: a packet held on its way out is still charged to its TCP
 * socket, and TCP Small Queues lets a socket have only about 1 ms of its pacing rate (at least
 * two packets) below it. Held 5 ms on egress, a 1 Gbit/s stream fell to 9 Mbit/s here. netem
 * avoids that by orphaning the packet (skb_orphan_partial); user space cannot. On arrival the
 * packet is no longer the sender's (ip_rcv orphans it before prerouting), so the hold costs the
 * sender nothing. The order is then that of a real link too: tbf on the sender's egress
 * serialises at its rate, then the packet travels DELAY.
 *
 * No bypass, no fail-open: the rule has no NFQUEUE bypass flag and the queue no FAIL_OPEN flag,
 * so a host whose daemon is missing or dead drops every incoming IPv4 packet. A link that stops
 * working is noticed; one that silently loses its delay would not be. `run` binds the queue and
 * says "bound" before `rule-add` is called; stopping is `rule-del`, then SIGTERM to `run`, which
 * accepts every packet it still holds and exits 0. `run` stops by itself after --limit seconds
 * (exit 3; the rule stays, so the host's packets are dropped from then on: noticed).
 * `rule-add --bypass 1` sets the NFQUEUE bypass flag instead: with no daemon listening, packets
 * pass undelayed. For tests whose subject is not the delay (a dead daemon must not fail them).
 *
 * Bounded: at most --max-held packets are held (the kernel queue has the same length; beyond it
 * the kernel drops, which TCP sees as loss; counted). Time: the arrival time is when this
 * program reads the packet (CLOCK_MONOTONIC), so its own wake-up latency adds to the delay,
 * never subtracts. Written against the kernel's uapi headers only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TABLE_NAME "scvae_delay"
#define CHAIN_NAME "ingress"
#define RECV_BATCH 64          /* messages read per recvmmsg */
#define RECV_SIZE 1024         /* a META packet message is ~150 bytes; only its first attribute is read */

static const char *program = "nfq-delay";

static void fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

static int64_t monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- Netlink messages: one buffer, attributes appended, nests closed by offset. ---- */

struct message_buffer {
    size_t length;
    char bytes[16384];
};

static void *buffer_reserve(struct message_buffer *b, size_t size) {
    size_t aligned = NLMSG_ALIGN(size);
    if (b->length + aligned > sizeof b->bytes) fail("internal: netlink message buffer full");
    void *p = b->bytes + b->length;
    memset(p, 0, aligned);
    b->length += aligned;
    return p;
}

/* Starts a netfilter message (nlmsghdr + nfgenmsg); returns its offset for message_end. */
static size_t message_begin(struct message_buffer *b, uint16_t type, uint16_t flags, uint8_t family,
                            uint16_t resource_id, uint32_t sequence) {
    size_t offset = b->length;
    struct nlmsghdr *header = buffer_reserve(b, sizeof *header);
    header->nlmsg_type = type;
    header->nlmsg_flags = flags;
    header->nlmsg_seq = sequence;
    struct nfgenmsg *generic = buffer_reserve(b, sizeof *generic);
    generic->nfgen_family = family;
    generic->version = NFNETLINK_V0;
    generic->res_id = htons(resource_id);
    return offset;
}

static void message_end(struct message_buffer *b, size_t offset) {
    ((struct nlmsghdr *)(b->bytes + offset))->nlmsg_len = (uint32_t)(b->length - offset);
}

static void attribute(struct message_buffer *b, uint16_t type, const void *data, size_t size) {
    struct nlattr *a = buffer_reserve(b, NLA_HDRLEN + size);
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + size);
    memcpy((char *)a + NLA_HDRLEN, data, size);
}

static void attribute_string(struct message_buffer *b, uint16_t type, const char *s) {
    attribute(b, type, s, strlen(s) + 1);
}

static void attribute_be32(struct message_buffer *b, uint16_t type, uint32_t value) {
    uint32_t big = htonl(value);
    attribute(b, type, &big, sizeof big);
}

static size_t nest_begin(struct message_buffer *b, uint16_t type) {
    size_t offset = b->length;
    struct nlattr *a = buffer_reserve(b, NLA_HDRLEN);
    a->nla_type = type | NLA_F_NESTED;
    return offset;
}

static void nest_end(struct message_buffer *b, size_t offset) {
    ((struct nlattr *)(b->bytes + offset))->nla_len = (uint16_t)(b->length - offset);
}

static int netfilter_socket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) fail("socket(AF_NETLINK, NETLINK_NETFILTER): %s", strerror(errno));
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) fail("bind(netlink): %s", strerror(errno));
    return fd;
}

static bool try_send_buffer(int fd, const struct message_buffer *b) {
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t sent = sendto(fd, b->bytes, b->length, 0, (struct sockaddr *)&kernel, sizeof kernel);
    return sent >= 0 && (size_t)sent == b->length;
}

static void send_buffer(int fd, const struct message_buffer *b, const char *what) {
    if (!try_send_buffer(fd, b)) fail("%s: sendto(netlink): %s", what, strerror(errno));
}

/*
 * Reads the kernel's answers until `expected` acknowledgements (sequence numbers first_sequence..)
 * have arrived. Returns 0, or the first negative errno the kernel reported (and its sequence).
 * Bounded: the socket has a 5 s receive timeout.
 */
static int await_acks(int fd, uint32_t first_sequence, int expected, uint32_t *failed_sequence) {
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char answer[8192];
    int acknowledged = 0;
    while (acknowledged < expected) {
        ssize_t n = recv(fd, answer, sizeof answer, 0);
        if (n < 0) fail("no answer from the kernel (recv: %s)", strerror(errno));
        for (struct nlmsghdr *h = (struct nlmsghdr *)answer; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != NLMSG_ERROR) continue;
            const struct nlmsgerr *e = NLMSG_DATA(h);
            if (h->nlmsg_seq < first_sequence || h->nlmsg_seq >= first_sequence + (uint32_t)expected) continue;
            if (e->error != 0) {
                *failed_sequence = h->nlmsg_seq;
                return e->error;
            }
            acknowledged++;
        }
    }
    return 0;
}

/* ---- The nf_tables rule: table ip scvae_delay, chain ingress (prerouting), iifname DEV -> NFQUEUE. ---- */

enum { SEQ_TABLE = 1, SEQ_CHAIN, SEQ_RULE, SEQ_DELETE };

static void batch_edge(struct message_buffer *b, uint16_t type, uint32_t sequence) {
    message_end(b, message_begin(b, type, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, sequence));
}

static uint16_t nft_type(int message) { return (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | message); }

/* Removes the table (and its chain and rule). Returns 0, or -ENOENT when there was none. */
static int rule_delete(int fd) {
    struct message_buffer b = {0};
    batch_edge(&b, NFNL_MSG_BATCH_BEGIN, 0);
    size_t m = message_begin(&b, nft_type(NFT_MSG_DELTABLE), NLM_F_REQUEST | NLM_F_ACK, NFPROTO_IPV4, 0, SEQ_DELETE);
    attribute_string(&b, NFTA_TABLE_NAME, TABLE_NAME);
    message_end(&b, m);
    batch_edge(&b, NFNL_MSG_BATCH_END, SEQ_DELETE + 1);
    send_buffer(fd, &b, "rule-del");
    uint32_t failed = 0;
    int error = await_acks(fd, SEQ_DELETE, 1, &failed);
    if (error != 0 && error != -ENOENT) fail("rule-del: the kernel refused to delete table ip %s: %s", TABLE_NAME, strerror(-error));
    return error;
}

static void rule_add(int fd, uint16_t queue, const char *device, bool bypass) {
    if (strlen(device) >= IFNAMSIZ) fail("rule-add: device name '%s' is too long", device);
    rule_delete(fd); /* idempotent: an earlier rule of ours is replaced */

    struct message_buffer b = {0};
    batch_edge(&b, NFNL_MSG_BATCH_BEGIN, 0);

    size_t m = message_begin(&b, nft_type(NFT_MSG_NEWTABLE), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, NFPROTO_IPV4, 0, SEQ_TABLE);
    attribute_string(&b, NFTA_TABLE_NAME, TABLE_NAME);
    message_end(&b, m);

    m = message_begin(&b, nft_type(NFT_MSG_NEWCHAIN), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, NFPROTO_IPV4, 0, SEQ_CHAIN);
    attribute_string(&b, NFTA_CHAIN_TABLE, TABLE_NAME);
    attribute_string(&b, NFTA_CHAIN_NAME, CHAIN_NAME);
    size_t hook = nest_begin(&b, NFTA_CHAIN_HOOK);
    attribute_be32(&b, NFTA_HOOK_HOOKNUM, NF_INET_PRE_ROUTING);
    attribute_be32(&b, NFTA_HOOK_PRIORITY, (uint32_t)-300); /* before conntrack and NAT: the first look at an arriving packet */
    nest_end(&b, hook);
    attribute_be32(&b, NFTA_CHAIN_POLICY, NF_ACCEPT);
    attribute_string(&b, NFTA_CHAIN_TYPE, "filter");
    message_end(&b, m);

    m = message_begin(&b, nft_type(NFT_MSG_NEWRULE), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, NFPROTO_IPV4, 0, SEQ_RULE);
    attribute_string(&b, NFTA_RULE_TABLE, TABLE_NAME);
    attribute_string(&b, NFTA_RULE_CHAIN, CHAIN_NAME);
    size_t expressions = nest_begin(&b, NFTA_RULE_EXPRESSIONS);

    /* meta iifname -> register 1 (16 bytes) */
    size_t element = nest_begin(&b, NFTA_LIST_ELEM);
    attribute_string(&b, NFTA_EXPR_NAME, "meta");
    size_t data = nest_begin(&b, NFTA_EXPR_DATA);
    attribute_be32(&b, NFTA_META_DREG, NFT_REG_1);
    attribute_be32(&b, NFTA_META_KEY, NFT_META_IIFNAME);
    nest_end(&b, data);
    nest_end(&b, element);

    /* register 1 == DEV (zero-padded to IFNAMSIZ), else the rule ends here */
    element = nest_begin(&b, NFTA_LIST_ELEM);
    attribute_string(&b, NFTA_EXPR_NAME, "cmp");
    data = nest_begin(&b, NFTA_EXPR_DATA);
    attribute_be32(&b, NFTA_CMP_SREG, NFT_REG_1);
    attribute_be32(&b, NFTA_CMP_OP, NFT_CMP_EQ);
    size_t value = nest_begin(&b, NFTA_CMP_DATA);
    char name[IFNAMSIZ] = {0};
    memcpy(name, device, strlen(device));
    attribute(&b, NFTA_DATA_VALUE, name, sizeof name);
    nest_end(&b, value);
    nest_end(&b, data);
    nest_end(&b, element);

    /* xtables target NFQUEUE revision 3 through nft_compat (this kernel has no nft "queue"
       expression: CONFIG_NFT_QUEUE is not set). Flags 0 (no bypass) unless `bypass`. Its info is padded to
       XT_ALIGN (8 bytes), as the kernel checks. */
    element = nest_begin(&b, NFTA_LIST_ELEM);
    attribute_string(&b, NFTA_EXPR_NAME, "target");
    data = nest_begin(&b, NFTA_EXPR_DATA);
    attribute_string(&b, NFTA_TARGET_NAME, "NFQUEUE");
    attribute_be32(&b, NFTA_TARGET_REV, 3);
    struct { struct xt_NFQ_info_v3 info; uint16_t pad; } target = {.info = {.queuenum = queue, .queues_total = 1, .flags = bypass ? NFQ_FLAG_BYPASS : 0}};
    attribute(&b, NFTA_TARGET_INFO, &target, sizeof target);
    nest_end(&b, data);
    nest_end(&b, element);

    nest_end(&b, expressions);
    message_end(&b, m);
    batch_edge(&b, NFNL_MSG_BATCH_END, SEQ_RULE + 1);

    send_buffer(fd, &b, "rule-add");
    uint32_t failed = 0;
    int error = await_acks(fd, SEQ_TABLE, 3, &failed);
    if (error != 0) {
        const char *what = failed == SEQ_TABLE ? "the table" : failed == SEQ_CHAIN ? "the prerouting chain" : "the rule (meta iifname, cmp, xt NFQUEUE)";
        fail("rule-add: the kernel refused %s: %s", what, strerror(-error));
    }
}

/* ---- The queue: bind, read packet ids, give verdicts. ---- */

static uint16_t queue_type(int message) { return (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | message); }

static void queue_bind(int fd, uint16_t queue, uint32_t max_held) {
    struct message_buffer b = {0};
    size_t m = message_begin(&b, queue_type(NFQNL_MSG_CONFIG), NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, queue, 1);
    struct nfqnl_msg_config_cmd command = {.command = NFQNL_CFG_CMD_BIND};
    attribute(&b, NFQA_CFG_CMD, &command, sizeof command);
    struct nfqnl_msg_config_params params = {.copy_range = htonl(0), .copy_mode = NFQNL_COPY_META};
    attribute(&b, NFQA_CFG_PARAMS, &params, sizeof params);
    attribute_be32(&b, NFQA_CFG_QUEUE_MAXLEN, max_held);
    /* GSO: a super-packet is queued whole, not segmented first (cheaper, and the delay is per
       packet anyway). FAIL_OPEN stays off: a full queue drops, it does not skip the delay. */
    attribute_be32(&b, NFQA_CFG_FLAGS, NFQA_CFG_F_GSO);
    attribute_be32(&b, NFQA_CFG_MASK, NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN);
    message_end(&b, m);
    send_buffer(fd, &b, "bind");
    uint32_t failed = 0;
    int error = await_acks(fd, 1, 1, &failed);
    if (error == -EBUSY) fail("queue %u is already bound by another process in this namespace", queue);
    if (error != 0) fail("binding queue %u refused: %s", queue, strerror(-error));
    struct timeval none = {0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
}

static void verdict(struct message_buffer *b, uint16_t queue, int kind, uint32_t verdict_value, uint32_t id) {
    size_t m = message_begin(b, queue_type(kind), NLM_F_REQUEST, AF_UNSPEC, queue, 0);
    struct nfqnl_msg_verdict_hdr header = {.verdict = htonl(verdict_value), .id = htonl(id)};
    attribute(b, NFQA_VERDICT_HDR, &header, sizeof header);
    message_end(b, m);
}

/* Returns the packet id of a NFQNL_MSG_PACKET message, or false when it has none. */
static bool packet_id(const struct nlmsghdr *h, uint32_t *id) {
    if (h->nlmsg_type != queue_type(NFQNL_MSG_PACKET)) return false;
    const char *start = (const char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
    const char *end = (const char *)h + h->nlmsg_len;
    for (const char *p = start; p + NLA_HDRLEN <= end;) {
        const struct nlattr *a = (const struct nlattr *)p;
        if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end) break;
        if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR && a->nla_len >= NLA_HDRLEN + sizeof(struct nfqnl_msg_packet_hdr)) {
            struct nfqnl_msg_packet_hdr header;
            memcpy(&header, p + NLA_HDRLEN, sizeof header);
            *id = ntohl(header.packet_id);
            return true;
        }
        p += NLA_ALIGN(a->nla_len);
    }
    return false;
}

/* splitmix64: a small seeded generator, enough to decide losses reproducibly. */
static uint64_t random_state;
static double random_unit(void) {
    uint64_t z = (random_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0; /* [0, 1) */
}

struct held_packet { uint32_t id; int64_t due_ns; };

struct statistics {
    uint64_t packets, accepted, lost, dropped_full, enobufs, unparsed, errors;
    uint32_t max_held;
};

/* A verdict that could not be sent is not fatal: the packets stay queued in the kernel, and the
   next batch verdict (ACCEPT up to a newer id) releases them too. Counted, the first few said. */
static void send_verdicts(int fd, const struct message_buffer *b, struct statistics *stats) {
    if (try_send_buffer(fd, b)) return;
    if (stats->errors++ < 5) fprintf(stderr, "%s: sending verdicts failed (%s); the next batch verdict covers them\n", program, strerror(errno));
}

static volatile sig_atomic_t stop_signal = 0;
static void on_stop_signal(int signal_number) { stop_signal = signal_number; }

struct run_settings {
    uint16_t queue;
    int64_t delay_ns;
    double loss;          /* fraction in [0, 1] */
    uint64_t seed;
    uint32_t max_held;
    int64_t limit_s;
    const char *pidfile;
};

static int run(const struct run_settings *s) {
    random_state = s->seed;
    int fd = netfilter_socket();
    /* A deep receive buffer: the kernel's queue is bounded by max_held packets, and each of their
       messages must fit here, or they are lost (ENOBUFS; recovered by the next batch verdict). */
    int receive_buffer = 16 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    queue_bind(fd, s->queue, s->max_held);
    /* Wake-ups no more than 20 us after a packet's due time (the default slack is 50 us). */
    prctl(PR_SET_TIMERSLACK, 20000UL, 0, 0, 0);

    sigset_t stop_signals, during_poll;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop_signals, &during_poll);
    sigdelset(&during_poll, SIGTERM);
    sigdelset(&during_poll, SIGINT);
    sigdelset(&during_poll, SIGHUP);
    struct sigaction action = {.sa_handler = on_stop_signal};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);

    if (s->pidfile) {
        FILE *f = fopen(s->pidfile, "w");
        if (!f) fail("cannot write --pidfile %s: %s", s->pidfile, strerror(errno));
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    printf("%s: bound queue %u, delay %.3f ms, loss %.4f%%, seed %" PRIu64 ", at most %u held, limit %" PRId64 " s, pid %d\n",
           program, s->queue, s->delay_ns / 1e6, s->loss * 100, s->seed, s->max_held, s->limit_s, (int)getpid());
    fflush(stdout);

    struct held_packet *ring = calloc(s->max_held, sizeof *ring);
    if (!ring) fail("cannot allocate %u held packets", s->max_held);
    uint32_t head = 0, count = 0;
    struct statistics stats = {0};
    const int64_t started = monotonic_ns(), deadline = started + s->limit_s * 1000000000;
    static char receive_bytes[RECV_BATCH][RECV_SIZE];
    struct iovec vectors[RECV_BATCH];
    struct mmsghdr messages[RECV_BATCH];
    for (int i = 0; i < RECV_BATCH; i++) {
        vectors[i] = (struct iovec){.iov_base = receive_bytes[i], .iov_len = RECV_SIZE};
        messages[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &vectors[i], .msg_iovlen = 1}};
    }
    struct message_buffer out;
    bool have_last_id = false;
    uint32_t last_id = 0;   /* the newest id read: a batch ACCEPT up to it releases everything */
    int status = 0;

    for (;;) {
        int64_t now = monotonic_ns();
        out.length = 0;

        /* Release the packets that are due: ids arrive in order and the delay is constant, so
           the due ones are a prefix of the ring and one batch verdict accepts them all (and any
           older packet whose message was lost to ENOBUFS). */
        uint32_t released = 0, release_up_to = 0;
        while (count > 0 && ring[head].due_ns <= now) {
            release_up_to = ring[head].id;
            head = (head + 1) % s->max_held;
            count--;
            released++;
        }
        if (released > 0) {
            verdict(&out, s->queue, NFQNL_MSG_VERDICT_BATCH, NF_ACCEPT, release_up_to);
            stats.accepted += released;
        }
        if (out.length > 0) send_verdicts(fd, &out, &stats);

        if (stop_signal || now >= deadline) break;

        int64_t wait_ns = deadline - now;
        if (count > 0 && ring[head].due_ns - now < wait_ns) wait_ns = ring[head].due_ns - now;
        struct timespec wait = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = ppoll(&p, 1, &wait, &during_poll);
        if (ready < 0 && errno != EINTR) fail("ppoll: %s", strerror(errno));
        if (ready <= 0) continue;

        /* Read what has arrived (bounded: a few batches, so releases are not starved). */
        out.length = 0;
        for (int round = 0; round < 8; round++) {
            int n = recvmmsg(fd, messages, RECV_BATCH, MSG_DONTWAIT, NULL);
            if (n < 0) {
                if (errno == ENOBUFS) { stats.enobufs++; continue; }
                if (errno == EAGAIN || errno == EINTR) break;
                fail("recvmmsg(netlink): %s", strerror(errno));
            }
            int64_t arrived = monotonic_ns();
            for (int i = 0; i < n; i++) {
                ssize_t length = messages[i].msg_len;
                for (struct nlmsghdr *h = (struct nlmsghdr *)receive_bytes[i]; NLMSG_OK(h, (size_t)length); h = NLMSG_NEXT(h, length)) {
                    if (h->nlmsg_type == NLMSG_ERROR) {
                        const struct nlmsgerr *e = NLMSG_DATA(h);
                        if (e->error != 0 && stats.errors++ < 5) fprintf(stderr, "%s: the kernel refused a verdict: %s\n", program, strerror(-e->error));
                        continue;
                    }
                    uint32_t id;
                    if (!packet_id(h, &id)) { stats.unparsed++; continue; }
                    stats.packets++;
                    last_id = id;
                    have_last_id = true;
                    if (s->loss > 0 && random_unit() < s->loss) {
                        verdict(&out, s->queue, NFQNL_MSG_VERDICT, NF_DROP, id);
                        stats.lost++;
                    } else if (count == s->max_held) {
                        verdict(&out, s->queue, NFQNL_MSG_VERDICT, NF_DROP, id);
                        stats.dropped_full++;
                    } else {
                        ring[(head + count) % s->max_held] = (struct held_packet){.id = id, .due_ns = arrived + s->delay_ns};
                        count++;
                        if (count > stats.max_held) stats.max_held = count;
                    }
                    if (out.length > sizeof out.bytes - 256) { send_verdicts(fd, &out, &stats); out.length = 0; }
                }
            }
            if (n < RECV_BATCH) break;
        }
        if (out.length > 0) send_verdicts(fd, &out, &stats);
    }

    /* Stopping: accept everything still held (and anything queued but unread), then leave. */
    out.length = 0;
    if (have_last_id) verdict(&out, s->queue, NFQNL_MSG_VERDICT_BATCH, NF_ACCEPT, last_id);
    if (out.length > 0) send_verdicts(fd, &out, &stats);
    stats.accepted += count;
    if (!stop_signal) {
        fprintf(stderr, "%s: --limit of %" PRId64 " s reached: stopping; the rule, if added, stays: IPv4 packets arriving at this host are dropped from now on\n", program, s->limit_s);
        status = 3;
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    /* System time includes the rest of each accepted packet's way in (routing, the receiving
       socket's TCP work): a verdict re-injects the packet in this process's context. */
    double user = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6, system = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    double wall = (monotonic_ns() - started) / 1e9;
    printf("%s: stopped (%s): %" PRIu64 " packets, %" PRIu64 " accepted, %" PRIu64 " lost (%.3f%%), %" PRIu64 " dropped with the queue full, "
           "at most %u held, %" PRIu64 " ENOBUFS, %" PRIu64 " unparsed, %" PRIu64 " errors; CPU %.3f s (user %.3f, system %.3f) over %.1f s (%.2f%% of a core)\n",
           program, stop_signal ? "signal" : "limit", stats.packets, stats.accepted, stats.lost,
           stats.packets ? 100.0 * stats.lost / stats.packets : 0.0, stats.dropped_full, stats.max_held, stats.enobufs,
           stats.unparsed, stats.errors, user + system, user, system, wall, wall > 0 ? 100 * (user + system) / wall : 0.0);
    fflush(stdout);
    close(fd);
    if (s->pidfile) unlink(s->pidfile);
    free(ring);
    return status;
}

/* ---- Arguments ---- */

/* "1ms", "250us", "0.5ms", "2s", "0" -> nanoseconds; -1 when malformed. */
static int64_t parse_duration(const char *text) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || value < 0) return -1;
    double scale;
    if (strcmp(end, "ms") == 0) scale = 1e6;
    else if (strcmp(end, "us") == 0) scale = 1e3;
    else if (strcmp(end, "s") == 0) scale = 1e9;
    else if (*end == 0 && value == 0) scale = 0;
    else return -1;
    if (value * scale > 10e9) return -1; /* more than 10 s: surely a mistake */
    return (int64_t)(value * scale + 0.5);
}

/* "0.5%" -> 0.005; -1 when malformed. */
static double parse_loss(const char *text) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || value < 0 || value > 100) return -1;
    if (strcmp(end, "%") == 0) return value / 100;
    if (*end == 0 && value == 0) return 0;
    return -1;
}

static long parse_integer(const char *option, const char *text, long low, long high) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < low || value > high) fail("%s takes a whole number in %ld..%ld, not '%s'", option, low, high, text);
    return value;
}

static void usage(void) {
    fprintf(stderr,
            "usage: %s run --delay 1ms [--loss 0.5%%] [--seed 1] [--queue 7] [--max-held 4096] [--limit 3600] [--pidfile FILE]\n"
            "       %s rule-add [--queue 7] [--dev eth0] [--bypass 0|1]\n"
            "       %s rule-del\n", program, program, program);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *command = argv[1];
    struct run_settings s = {.queue = 7, .delay_ns = -1, .loss = 0, .seed = 1, .max_held = 4096, .limit_s = 3600};
    const char *device = "eth0";
    bool bypass = false;
    for (int i = 2; i < argc; i++) {
        const char *option = argv[i];
        if (i + 1 >= argc) { fprintf(stderr, "%s: %s needs a value\n", program, option); usage(); }
        const char *value = argv[++i];
        if (strcmp(option, "--delay") == 0) {
            if ((s.delay_ns = parse_duration(value)) < 0) fail("--delay takes a duration such as 1ms, 250us or 0 (at most 10 s), not '%s'", value);
        } else if (strcmp(option, "--loss") == 0) {
            if ((s.loss = parse_loss(value)) < 0) fail("--loss takes a percentage such as 0.5%% (or 0), not '%s'", value);
        } else if (strcmp(option, "--seed") == 0) s.seed = (uint64_t)parse_integer(option, value, 0, 1L << 62);
        else if (strcmp(option, "--queue") == 0) s.queue = (uint16_t)parse_integer(option, value, 0, 65535);
        else if (strcmp(option, "--max-held") == 0) s.max_held = (uint32_t)parse_integer(option, value, 16, 1 << 20);
        else if (strcmp(option, "--limit") == 0) s.limit_s = parse_integer(option, value, 1, 7 * 86400);
        else if (strcmp(option, "--pidfile") == 0) s.pidfile = value;
        else if (strcmp(option, "--dev") == 0) device = value;
        else if (strcmp(option, "--bypass") == 0) bypass = parse_integer(option, value, 0, 1) == 1;
        else { fprintf(stderr, "%s: unknown option %s\n", program, option); usage(); }
    }
    if (strcmp(command, "run") == 0) {
        if (s.delay_ns < 0) fail("run needs --delay (e.g. --delay 1ms; --delay 0 for loss only)");
        return run(&s);
    }
    if (strcmp(command, "rule-add") == 0) {
        int fd = netfilter_socket();
        rule_add(fd, s.queue, device, bypass);
        printf("%s: table ip %s: prerouting, iifname %s -> NFQUEUE %u (%s)\n", program, TABLE_NAME, device, s.queue,
               bypass ? "bypass: undelayed when no daemon listens" : "no bypass");
        return 0;
    }
    if (strcmp(command, "rule-del") == 0) {
        int fd = netfilter_socket();
        int error = rule_delete(fd);
        printf("%s: table ip %s %s\n", program, TABLE_NAME, error == -ENOENT ? "was not there" : "removed");
        return 0;
    }
    usage();
}
