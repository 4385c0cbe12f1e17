// SPDX-License-Identifier: GPL-2.0
/* Bench-only: flowmon's flow accounting with the flow table as each candidate map type,
 * built once per variant by bench/monitor/map-choice.ts (-DVARIANT=1|2|3|4) and timed with
 * BPF_PROG_TEST_RUN. Not loaded by tacmesh. Variant 4 is the per-CPU hash keyed by an
 * IPv4-only 20-byte key: what the hash of the 44-byte key costs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "flowmon.h"
#include "parse.h"

#if VARIANT == 1 || VARIANT == 4
#define MAP_TYPE BPF_MAP_TYPE_PERCPU_HASH
#elif VARIANT == 2
#define MAP_TYPE BPF_MAP_TYPE_LRU_HASH
#else
#define MAP_TYPE BPF_MAP_TYPE_HASH
#endif

#if VARIANT == 4
struct flow_key4 {
	__u32 src;
	__u32 dst;
	__u16 src_port;
	__u16 dst_port;
	__u32 ifindex;
	__u8 protocol;
	__u8 direction;
	__u16 _pad;
};
#define KEY_TYPE struct flow_key4
#else
#define KEY_TYPE struct flow_key
#endif

struct {
	__uint(type, MAP_TYPE);
	__uint(max_entries, 65536);
	__type(key, KEY_TYPE);
	__type(value, struct flow_value);
} flows SEC(".maps");

SEC("tc")
int account(struct __sk_buff *skb)
{
	struct parsed p = {};
	if (parse_packet(skb, &p) != PARSE_OK)
		return 0;
	__u64 now = bpf_ktime_get_ns();
#if VARIANT == 4
	struct flow_key4 k = {
		.src_port = p.key.src_port,
		.dst_port = p.key.dst_port,
		.ifindex = p.key.ifindex,
		.protocol = p.key.protocol,
		.direction = p.key.direction,
	};
	__builtin_memcpy(&k.src, p.key.src, 4);
	__builtin_memcpy(&k.dst, p.key.dst, 4);
	KEY_TYPE *key = &k;
#else
	KEY_TYPE *key = &p.key;
#endif
	struct flow_value *v = bpf_map_lookup_elem(&flows, key);
	if (!v) {
		struct flow_value fresh = { .packets = 1, .bytes = skb->len, .first_seen_jiffies = now, .last_seen_jiffies = now };
		bpf_map_update_elem(&flows, key, &fresh, BPF_NOEXIST);
		return 0;
	}
#if VARIANT == 1 || VARIANT == 4
	v->packets += 1;
	v->bytes += skb->len;
#else
	/* a shared value needs atomic adds, or CPUs lose each other's increments */
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, skb->len);
#endif
	v->last_seen_jiffies = now;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
