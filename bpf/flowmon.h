/* flowmon (bpf/flowmon.bpf.c): per-flow accounting and HTTP lines. The structs it shares
 * with TypeScript, mirrored member by member in src/bpf/types.ts and checked against the
 * object's BTF by src/bpf/types.test.ts. */
#ifndef TACMESH_FLOWMON_H
#define TACMESH_FLOWMON_H

#include "flow_key.h"

/* One slot per CPU (per-CPU hash): counters are cumulative since the flow was created. */
struct flow_value {
	__u64 packets; /* GSO segments, as they go on the wire */
	__u64 bytes;   /* skb->len at the hook: the L2 frame, as interface counters count it */
	__u64 first_seen_jiffies; /* the tick clock (bpf_jiffies64); see flowmon_clock_sample */
	__u64 last_seen_jiffies;
	__u8 tcp_flags; /* OR of every packet's flags */
	__u8 dscp;      /* of the last packet */
	/* TCP, this CPU's last payload segment: it ended without PSH, so a segment that starts
	 * at l7_next_seq continues the same write and cannot start an HTTP line. */
	__u8 l7_in_write;
	__u8 l7_state;  /* FLOWMON_L7_*: what this CPU's slot knows of the direction's start */
	__u32 l7_next_seq; /* FLOWMON_L7_OPENING: the first payload byte's sequence number */
};

/* flow_value.l7_state. HTTP/1.x puts a request or a status line first in each direction of a
 * connection: where this CPU's slot saw the SYN and then the segment at SYN + 1, that segment
 * settles whether the direction is looked at any more. */
#define FLOWMON_L7_UNKNOWN 0 /* its start not seen here: every write start is looked at */
#define FLOWMON_L7_OPENING 1 /* SYN seen here; l7_next_seq is the first payload byte */
#define FLOWMON_L7_HTTP 2    /* the first payload was HTTP: every write start is looked at */
#define FLOWMON_L7_OTHER 3   /* the first payload was 8 bytes or more and not HTTP: never again */

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

#endif
