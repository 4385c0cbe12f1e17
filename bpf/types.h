/* Structs shared by the kernel programs and their TypeScript decoders.
 * Every struct here has a mirror in src/bpf/types.ts that follows it field by field;
 * change both together (src/bpf/types.test.ts checks the sizes against the BTF). */
#ifndef TACMESH_TYPES_H
#define TACMESH_TYPES_H

/* linkem: link emulation (random loss, in bursts) on one direction of a link. */
struct linkem_config {
	__u32 loss_ppm; /* per million packets outside a burst, the chance one starts; 1000000 drops everything (one-way link) */
	__u32 burst;    /* packets lost in a row per burst; 0 or 1: independent loss */
};

struct linkem_counters {
	__u64 passed_packets; /* GSO segments, as the wire would see them */
	__u64 passed_bytes;
	__u64 dropped_packets;
	__u64 dropped_bytes;
	__u64 bursts; /* loss bursts started (each drops `burst` packets in a row) */
};

/* flowmon: per-flow accounting and HTTP lines (bpf/flowmon.bpf.c). */

#define FLOWMON_DIR_INGRESS 0
#define FLOWMON_DIR_EGRESS 1

/* IPv4 addresses sit in the first 4 bytes of src/dst, the rest zero. */
struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 src_port; /* ICMP: 0 */
	__u16 dst_port; /* ICMP: type << 8 | code */
	__u32 ifindex;
	__u8 protocol;
	__u8 ip_version; /* 4 or 6 */
	__u8 direction;  /* FLOWMON_DIR_* */
	__u8 _pad;
};

/* One slot per CPU (per-CPU hash): counters are cumulative since the flow was created. */
struct flow_value {
	__u64 packets; /* GSO segments, as they go on the wire */
	__u64 bytes;   /* skb->len at the hook: the L2 frame, as interface counters count it */
	__u64 first_seen_jiffies; /* the tick clock (bpf_jiffies64); see flowmon_clock_sample */
	__u64 last_seen_jiffies;
	__u8 tcp_flags; /* OR of every packet's flags */
	__u8 dscp;      /* of the last packet */
	__u8 _pad[6];
};

#define FLOWMON_L3 1 /* account flows by address pair */
#define FLOWMON_L4 2 /* ... and by protocol ports; off: ports are 0 */
#define FLOWMON_L7 4 /* emit HTTP request/status lines */

/* The program's global data (.bss): user space writes it whole, the programs read it
 * on every packet with no map lookup. */
struct flowmon_config {
	__u32 metrics;   /* FLOWMON_L3 | FLOWMON_L4 | FLOWMON_L7 */
	__u32 l7_sample; /* emit 1 HTTP event in N; 0 and 1 mean every one */
	__u32 ifaces_disabled; /* entries of flowmon_ifaces with enabled 0; none: no lookup */
	__u32 _pad;
};

/* Per interface (by ifindex); an interface without an entry is monitored. */
struct flowmon_iface {
	__u32 enabled;
};

/* jiffies and CLOCK_MONOTONIC read together, by flowmon_clock_sample: user space finds
 * when jiffies steps, which pins flow times (jiffies) to monotonic time. */
struct flowmon_clock_sample {
	__u64 jiffies;
	__u64 mono_ns; /* bpf_ktime_get_ns */
};

struct flowmon_counters {
	__u64 packets_seen;
	__u64 bytes_seen;
	__u64 flows_created;
	__u64 flow_map_full;   /* a new flow found no room: its packets are not accounted */
	__u64 http_events;
	__u64 events_dropped;  /* ring buffer full */
	__u64 l7_sampled_out;
	__u64 malformed;       /* headers shorter than they claim, or not in the linear area */
	__u64 non_ip;
};

#define HTTP_COPY_MAX 512 /* payload bytes copied per event; longer lines are truncated */
#define HTTP_KIND_REQUEST 1
#define HTTP_KIND_RESPONSE 2

struct http_event {
	struct flow_key key;
	__u64 time_ns; /* CLOCK_MONOTONIC */
	__u16 payload_len; /* TCP payload bytes in this packet (capped at 65535) */
	__u16 copied;      /* bytes of it in data[] */
	__u8 kind;         /* HTTP_KIND_* */
	__u8 _pad[3];
	char data[HTTP_COPY_MAX]; /* the payload from its start: request or status line, headers */
};

/* qos: tagging and conditioning on tc egress (bpf/qos.bpf.c). Two generations of every
 * table: user space fills the inactive one, then flips qos_config.active (atomic apply). */

#define QOS_MAX_RULES 1024 /* per generation */
#define QOS_RULE_WORDS 16  /* QOS_MAX_RULES / 64 */
#define QOS_MAX_CLASSES 16 /* per generation */
#define QOS_ANY_DSCP 0xff
#define QOS_POLICE_DROP 0
#define QOS_POLICE_REMARK 1

struct qos_config {
	__u32 active;  /* generation in force: 0 or 1 */
	__u32 enabled; /* 0: packets pass untouched */
};

/* LPM key: generation byte, then the address as IPv6 (IPv4 as ::ffff:a.b.c.d).
 * prefixlen counts the generation's 8 bits. */
struct qos_lpm_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 addr[16];
	__u8 _pad[3];
};

/* The rules (bit i = rule i of the generation) whose prefix covers the looked-up address,
 * plus every rule without a prefix on that side. */
struct qos_ruleset {
	__u64 bits[QOS_RULE_WORDS];
};

/* Rule i of generation g sits at g * QOS_MAX_RULES + i; lower i wins. */
struct qos_rule {
	__u16 src_port_min; /* ports inclusive; 0..65535 is any */
	__u16 src_port_max;
	__u16 dst_port_min;
	__u16 dst_port_max;
	__u32 ifindex;      /* 0: any interface */
	__u32 priority;     /* skb->priority = HTB classid (major << 16 | minor); 0 leaves it */
	__u8 protocol;      /* 0: any */
	__u8 match_dscp;    /* QOS_ANY_DSCP: any */
	__u8 set_dscp;      /* QOS_ANY_DSCP: leave as is */
	__u8 police_action; /* QOS_POLICE_* */
	__u8 police_dscp;   /* the re-mark above the rate */
	__u8 class_index;   /* into the per-class counters of the generation */
	__u8 _pad[2];
	__u64 police_rate;  /* bytes per second; 0: no policer */
	__u64 police_burst; /* bytes */
};

struct qos_bucket {
	struct bpf_spin_lock lock;
	__u32 _pad;
	__u64 tokens; /* bytes */
	__u64 last_ns;
};

struct qos_counters {
	__u64 packets; /* GSO segments */
	__u64 bytes;
	__u64 drops;   /* dropped by the policer */
	__u64 remarks; /* re-marked by the policer */
};

#endif
