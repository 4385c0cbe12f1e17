// SPDX-License-Identifier: GPL-2.0
/* flowmon: per-flow accounting and HTTP request/status lines, on tc ingress and egress of
 * any interface (NIC, bridge port, veth of a VM/namespace, container interface).
 *
 * Flows live in a per-CPU hash keyed by 5-tuple + ifindex + direction; counters are
 * cumulative, so user space reads deltas without deleting live entries (no lost
 * increments). HTTP lines go to a ring buffer with the flow key. Everything the program
 * does is steered at run time through flowmon_config (global data) and flowmon_ifaces. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "flowmon.h"
#include "parse.h"
#include "http.h"

/* TC_ACT_UNSPEC is TCX_NEXT under tcx: the packet goes on to the other programs on the hook
 * (linkem, qos, legacy tc filters). TC_ACT_OK would end the chain there. A monitor only looks. */
#define TC_ACT_UNSPEC (-1)
#define E2BIG_ 7
#define EEXIST_ 17
#define TCP_FLAG_SYN_ 0x02
#define TCP_FLAG_PSH_ 0x08

/* Per-CPU: no atomics and no cache-line bouncing on the hot path (docs/monitor.md has the
 * measurement). Sized by user space before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flowmon_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} flowmon_events SEC(".maps");

/* Its records are struct http_event, which no map or function signature names: this
 * pointer puts the struct into the object's BTF, where src/bpf/types.test.ts checks its
 * TypeScript mirror. libbpf skips the section: nothing of it is loaded. */
struct http_event *flowmon_events_record SEC(".shared_types") __attribute__((used));

/* Run-time steering in global data (.bss): user space writes it, the programs read it
 * straight from the map value, with no lookup (docs/monitor.md has the measurement). */
struct flowmon_config flowmon_config = {};

/* Only looked up while some interface is disabled (flowmon_config.ifaces_disabled). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct flowmon_iface);
} flowmon_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flowmon_counters);
} flowmon_counters SEC(".maps");

/* Written by flowmon_clock_sample, one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flowmon_clock_sample);
} flowmon_clock SEC(".maps");

/* Returns this CPU's slot of an existing flow; NULL when the packet created the flow or
 * found no room. A SYN (or SYN-ACK) opens the slot's HTTP track (FLOWMON_L7_OPENING). */
static __always_inline struct flow_value *account_flow(struct parsed *p, __u32 segs, __u32 len,
							__u64 now, struct flowmon_counters *cnt)
{
	int syn = p->key.protocol == IPPROTO_TCP && (p->tcp_flags & TCP_FLAG_SYN_);
	struct flow_value *v = bpf_map_lookup_elem(&flowmon_flows, &p->key);
	if (!v) {
		struct flow_value fresh = {
			.packets = segs,
			.bytes = len,
			.first_seen_jiffies = now,
			.last_seen_jiffies = now,
			.tcp_flags = p->tcp_flags,
			.dscp = p->dscp,
			.l7_state = syn ? FLOWMON_L7_OPENING : FLOWMON_L7_UNKNOWN,
			.l7_next_seq = p->tcp_seq + 1,
		};
		long err = bpf_map_update_elem(&flowmon_flows, &p->key, &fresh, BPF_NOEXIST);
		if (err == 0) {
			cnt->flows_created++;
			return NULL;
		}
		if (err != -EEXIST_) { /* -E2BIG: the table is full */
			cnt->flow_map_full++;
			return NULL;
		}
		/* another CPU created it meanwhile: add to this CPU's slot */
		v = bpf_map_lookup_elem(&flowmon_flows, &p->key);
		if (!v)
			return NULL;
	}
	if (!v->first_seen_jiffies)
		v->first_seen_jiffies = now;
	v->packets += segs;
	v->bytes += len;
	v->last_seen_jiffies = now;
	v->tcp_flags |= p->tcp_flags;
	v->dscp = p->dscp;
	if (syn) {
		v->l7_state = FLOWMON_L7_OPENING;
		v->l7_next_seq = p->tcp_seq + 1;
		v->l7_in_write = 0;
	}
	return v;
}

#define L7_SKIP 0
#define L7_LOOK 1
#define L7_FIRST 2 /* the direction's first payload: its head settles l7_state */

/* Can this TCP segment's payload start an HTTP line? Not in a direction whose first payload
 * was something else (FLOWMON_L7_OTHER), nor when the segment goes on, in sequence, from one
 * that ended without PSH: the kernel sets PSH at the end of every write (unless MSG_MORE),
 * and a GSO or GRO packet carries its last segment's PSH. Reading the payload of a GSO
 * packet costs ~100 ns here (its page is cold), so a bulk transfer is read only where it
 * starts, or where its writes start when it is HTTP (docs/monitor.md). v: this CPU's slot
 * of the flow, or NULL (a new flow, a full table, L3 or L4 off): then every segment is
 * looked at. */
static __always_inline int may_start_write(struct flow_value *v, struct parsed *p, __u32 len)
{
	if (!v)
		return L7_LOOK;
	if (len <= p->payload_off || v->l7_state == FLOWMON_L7_OTHER)
		return L7_SKIP; /* no payload: the track stays */
	int first = 0;
	if (v->l7_state == FLOWMON_L7_OPENING) {
		first = v->l7_next_seq == p->tcp_seq;
		if (!first) /* the first payload went by on another CPU, or in the SYN */
			v->l7_state = FLOWMON_L7_UNKNOWN;
	}
	int goes_on = v->l7_in_write && v->l7_next_seq == p->tcp_seq;
	v->l7_in_write = !(p->tcp_flags & TCP_FLAG_PSH_);
	v->l7_next_seq = p->tcp_seq + (len - p->payload_off);
	return first ? L7_FIRST : goes_on ? L7_SKIP : L7_LOOK;
}

/* Returns HTTP_KIND_* when the payload starts an HTTP line (whether or not the event was
 * sampled in and found room), 0 when its first 8 bytes are something else, -1 when there
 * are no 8 bytes to look at. */
static __always_inline int emit_http(struct __sk_buff *skb, struct parsed *p, __u32 l7_sample,
				     struct flowmon_counters *cnt)
{
	__u32 off = p->payload_off;
	if (!off || skb->len < off + 8)
		return -1;
	/* The first 8 payload bytes: straight from the packet when they are in the linear
	 * area, else copied (a GSO packet's payload sits in page fragments). */
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 copy[8];
	const __u8 *head = copy;
	__u32 direct = off;
	asm volatile("" : "+r"(direct)); /* keep the bound below on the register the verifier sees */
	if (direct < 0x400 && data + direct + 8 <= data_end)
		head = data + direct;
	else if (bpf_skb_load_bytes(skb, off, copy, sizeof(copy)))
		return -1;
	int kind = http_kind(head);
	if (!kind)
		return 0;
	if (l7_sample > 1 && bpf_get_prandom_u32() % l7_sample) {
		cnt->l7_sampled_out++;
		return kind;
	}
	struct http_event *ev = bpf_ringbuf_reserve(&flowmon_events, sizeof(*ev), 0);
	if (!ev) {
		cnt->events_dropped++;
		return kind;
	}
	__u32 payload = skb->len - p->payload_off;
	__u32 n;
	long err;
	/* Two calls with bounds the verifier can follow: a constant, or a masked length. */
	if (payload >= HTTP_COPY_MAX) {
		n = HTTP_COPY_MAX;
		err = bpf_skb_load_bytes(skb, p->payload_off, ev->data, HTTP_COPY_MAX);
	} else {
		n = payload;
		/* hide n from the compiler, or it drops the mask as a no-op and the verifier
		 * sees an unbounded length */
		asm volatile("" : "+r"(n));
		n &= HTTP_COPY_MAX - 1;
		err = n < 8 ? -1 : bpf_skb_load_bytes(skb, p->payload_off, ev->data, n);
	}
	if (err) {
		bpf_ringbuf_discard(ev, 0);
		return kind;
	}
	__builtin_memcpy(&ev->key, &p->key, sizeof(ev->key));
	ev->time_ns = bpf_ktime_get_ns();
	ev->payload_len = payload > 0xffff ? 0xffff : payload;
	ev->copied = n;
	ev->kind = kind;
	/* no wakeup: user space drains on a timer */
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	cnt->http_events++;
	return kind;
}

static __always_inline int flowmon(struct __sk_buff *skb, __u8 direction)
{
	__u32 zero = 0;
	__u32 ifindex = skb->ifindex;
	__u32 metrics = flowmon_config.metrics;
	if (flowmon_config.ifaces_disabled) {
		struct flowmon_iface *iface = bpf_map_lookup_elem(&flowmon_ifaces, &ifindex);
		if (iface && !iface->enabled)
			return TC_ACT_UNSPEC;
	}
	struct flowmon_counters *cnt = bpf_map_lookup_elem(&flowmon_counters, &zero);
	if (!cnt)
		return TC_ACT_UNSPEC;

	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	cnt->packets_seen += segs;
	cnt->bytes_seen += skb->len;

	struct parsed p = {};
	int rc = parse_packet(skb, &p);
	if (rc == PARSE_NON_IP) {
		cnt->non_ip++;
		return TC_ACT_UNSPEC;
	}
	if (rc == PARSE_MALFORMED)
		cnt->malformed++;
	if (!p.key.ip_version)
		return TC_ACT_UNSPEC;
	p.key.ifindex = ifindex;
	p.key.direction = direction;

	/* The tick clock as jiffies: one load the verifier inlines, where bpf_ktime_get_ns and
	 * even bpf_ktime_get_coarse_ns cost ~30 ns in real traffic here (docs/monitor.md).
	 * Flow times are whole milliseconds in the records, so a jiffy's resolution serves;
	 * HTTP events read the precise clock. */
	__u64 now = bpf_jiffies64();
	int l7 = (metrics & FLOWMON_L7) && rc == PARSE_OK && p.key.protocol == IPPROTO_TCP;
	/* Without ports a flow is no TCP stream to follow: every segment is looked at, before
	 * the ports are blanked (the event carries them). */
	if (l7 && (metrics & (FLOWMON_L3 | FLOWMON_L4)) != (FLOWMON_L3 | FLOWMON_L4)) {
		emit_http(skb, &p, flowmon_config.l7_sample, cnt);
		l7 = 0;
	}
	if (!(metrics & FLOWMON_L3))
		return TC_ACT_UNSPEC;
	if (!(metrics & FLOWMON_L4)) {
		p.key.src_port = 0;
		p.key.dst_port = 0;
		p.tcp_flags = 0;
	}
	struct flow_value *v = account_flow(&p, segs, skb->len, now, cnt);
	int look = l7 ? may_start_write(v, &p, skb->len) : L7_SKIP;
	if (look != L7_SKIP) {
		int kind = emit_http(skb, &p, flowmon_config.l7_sample, cnt);
		if (look == L7_FIRST && v)
			v->l7_state = kind > 0 ? FLOWMON_L7_HTTP : kind == 0 ? FLOWMON_L7_OTHER : FLOWMON_L7_UNKNOWN;
	}
	return TC_ACT_UNSPEC;
}

SEC("tc")
int flowmon_ingress(struct __sk_buff *skb)
{
	return flowmon(skb, FLOWMON_DIR_INGRESS);
}

SEC("tc")
int flowmon_egress(struct __sk_buff *skb)
{
	return flowmon(skb, FLOWMON_DIR_EGRESS);
}

/* Never attached: user space runs it (BPF_PROG_TEST_RUN) to pin jiffies to CLOCK_MONOTONIC. */
SEC("tc")
int flowmon_clock_sample(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct flowmon_clock_sample *s = bpf_map_lookup_elem(&flowmon_clock, &zero);
	if (s) {
		s->jiffies = bpf_jiffies64();
		s->mono_ns = bpf_ktime_get_ns();
	}
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
