// SPDX-License-Identifier: GPL-2.0
/* Bench-only: flowmon's flow accounting with the flow table as each candidate map type,
 * built three times by bench/monitor/map-choice.ts (-DVARIANT=1|2|3) and timed with
 * BPF_PROG_TEST_RUN. Not loaded by tacmesh. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "flowmon.h"
#include "parse.h"

#if VARIANT == 1
#define MAP_TYPE BPF_MAP_TYPE_PERCPU_HASH
#elif VARIANT == 2
#define MAP_TYPE BPF_MAP_TYPE_LRU_HASH
#else
#define MAP_TYPE BPF_MAP_TYPE_HASH
#endif

struct {
	__uint(type, MAP_TYPE);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows SEC(".maps");

SEC("tc")
int account(struct __sk_buff *skb)
{
	struct parsed p = {};
	if (parse_packet(skb, &p) != PARSE_OK)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct flow_value *v = bpf_map_lookup_elem(&flows, &p.key);
	if (!v) {
		struct flow_value fresh = { .packets = 1, .bytes = skb->len, .first_seen_jiffies = now, .last_seen_jiffies = now };
		bpf_map_update_elem(&flows, &p.key, &fresh, BPF_NOEXIST);
		return 0;
	}
#if VARIANT == 1
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
