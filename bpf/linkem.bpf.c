// SPDX-License-Identifier: GPL-2.0
/* Link emulation for tc (ingress or egress): drops packets at random with the
 * probability the user space writes into linkem_config, in bursts of `burst`
 * packets in a row when it is above 1, and counts what passed, what was dropped
 * and how many bursts. This machine has no netem, so loss is emulated here;
 * rate is left to HTB/TBF. loss_ppm = 1000000 makes a strictly one-way link. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "linkem.h"

/* Passing is TC_ACT_UNSPEC (TCX_NEXT): other programs on the hook still see the packet. */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_SHOT 2
#define PPM 1000000

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct linkem_config);
} linkem_config SEC(".maps");

/* Per-CPU so that counting never contends between CPUs; user space sums. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct linkem_counters);
} linkem_counters SEC(".maps");

/* Packets still to drop in the burst under way, per CPU (a burst is emulation, not
 * accounting: one that a CPU switch splits is still a run of losses). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} linkem_burst_left SEC(".maps");

SEC("tc")
int linkem(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct linkem_config *cfg = bpf_map_lookup_elem(&linkem_config, &zero);
	struct linkem_counters *cnt = bpf_map_lookup_elem(&linkem_counters, &zero);
	__u32 *left = bpf_map_lookup_elem(&linkem_burst_left, &zero);
	if (!cfg || !cnt || !left)
		return TC_ACT_UNSPEC;

	/* A GSO skb carries several wire packets; it is dropped or passed as a unit. */
	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u32 loss = cfg->loss_ppm;
	int drop = 0;
	if (loss >= PPM) {
		drop = 1;
	} else if (*left > 0 && cfg->burst > 1) {
		*left -= 1;
		drop = 1;
	} else if (loss && bpf_get_prandom_u32() % PPM < loss) {
		/* loss_ppm is the chance a burst starts here (user space turns the mean loss into it). */
		*left = cfg->burst > 1 ? cfg->burst - 1 : 0;
		cnt->bursts += 1;
		drop = 1;
	}
	if (drop) {
		cnt->dropped_packets += segs;
		cnt->dropped_bytes += skb->len;
		return TC_ACT_SHOT;
	}
	cnt->passed_packets += segs;
	cnt->passed_bytes += skb->len;
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
