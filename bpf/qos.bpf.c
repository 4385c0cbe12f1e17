// SPDX-License-Identifier: GPL-2.0
/* qos: tagging and conditioning on tc egress (direct action). The first rule that matches
 * a packet (source/destination prefix by LPM trie, protocol, port ranges, incoming DSCP,
 * interface) may police it with a token bucket kept in the map (drop or re-mark above the
 * rate), set its DSCP (IPv4 checksum fixed) and put it in an HTB class (skb->priority =
 * classid: HTB takes the class from it before any filter). Per-rule and per-class counters.
 *
 * Every table has two generations; user space fills the inactive one and flips
 * qos_config.active, so a packet sees either the old policy or the new one, never a mix. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "qos.h"
#include "parse.h"

/* Passing is TC_ACT_UNSPEC (TCX_NEXT): other programs on the hook still run, and the
 * packet goes on to the root qdisc, which honours skb->priority. */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_SHOT 2
#define IPV4_CSUM_OFF 10
#define NSEC 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qos_config);
} qos_config SEC(".maps");

/* One trie per side: the generation byte, then the address (see struct qos_lpm_key). */
#define QOS_LPM_MAP(name)                                                  \
	struct {                                                           \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                       \
		__uint(max_entries, 2 * QOS_MAX_RULES * 4 + 8);            \
		__uint(map_flags, BPF_F_NO_PREALLOC);                      \
		__type(key, struct qos_lpm_key);                           \
		__type(value, struct qos_ruleset);                         \
	} name SEC(".maps")

QOS_LPM_MAP(qos_src);
QOS_LPM_MAP(qos_dst);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * QOS_MAX_RULES);
	__type(key, __u32);
	__type(value, struct qos_rule);
} qos_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * QOS_MAX_RULES);
	__type(key, __u32);
	__type(value, struct qos_bucket);
} qos_buckets SEC(".maps");

/* Per-CPU counters (user space sums): one slot per rule, and per class, of each generation. */
#define QOS_COUNTER_MAP(name, slots)                                       \
	struct {                                                           \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                   \
		__uint(max_entries, slots);                                \
		__type(key, __u32);                                        \
		__type(value, struct qos_counters);                        \
	} name SEC(".maps")

QOS_COUNTER_MAP(qos_rule_counters, 2 * QOS_MAX_RULES);
QOS_COUNTER_MAP(qos_class_counters, 2 * QOS_MAX_CLASSES);

struct match_ctx {
	struct parsed *p;
	__u32 gen;
	__u32 ifindex;
	__s32 found; /* rule index in the generation, -1: none */
	__u32 word;  /* the word match_bit walks */
	__u64 bits;  /* its candidates */
};

static __always_inline int rule_matches(const struct qos_rule *r, const struct match_ctx *c)
{
	const struct parsed *p = c->p;
	if (r->ifindex && r->ifindex != c->ifindex)
		return 0;
	if (r->protocol && r->protocol != p->key.protocol)
		return 0;
	if (r->match_dscp != QOS_ANY_DSCP && r->match_dscp != p->dscp)
		return 0;
	if (p->key.src_port < r->src_port_min || p->key.src_port > r->src_port_max)
		return 0;
	if (p->key.dst_port < r->dst_port_min || p->key.dst_port > r->dst_port_max)
		return 0;
	return 1;
}

/* bpf_loop callback: bit b of the current word; stops at the first rule that matches, or
 * when no higher bit is left. */
static long match_bit(__u32 b, void *data)
{
	struct match_ctx *c = data;
	b &= 63;
	__u64 rest = c->bits >> b;
	if (!rest)
		return 1;
	if (!(rest & 1))
		return 0;
	__u32 idx = c->gen * QOS_MAX_RULES + c->word * 64 + b;
	struct qos_rule *r = bpf_map_lookup_elem(&qos_rules, &idx);
	if (r && rule_matches(r, c)) {
		c->found = c->word * 64 + b;
		return 1;
	}
	return 0;
}

/* Token bucket: 1 when the packet is within the rate (and its bytes are taken). */
static __always_inline int police(__u32 idx, const struct qos_rule *r, __u32 len)
{
	struct qos_bucket *bk = bpf_map_lookup_elem(&qos_buckets, &idx);
	if (!bk)
		return 1;
	__u64 now = bpf_ktime_get_ns();
	int ok = 0;
	bpf_spin_lock(&bk->lock);
	__u64 elapsed = now - bk->last_ns;
	if (elapsed > NSEC)
		elapsed = NSEC;
	__u64 tokens = bk->tokens + elapsed * r->police_rate / NSEC;
	if (tokens > r->police_burst)
		tokens = r->police_burst;
	if (tokens >= len) {
		tokens -= len;
		ok = 1;
	}
	bk->tokens = tokens;
	bk->last_ns = now;
	bpf_spin_unlock(&bk->lock);
	return ok;
}

static __always_inline __u32 l3_offset(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	__u16 proto = bpf_ntohs(eth->h_proto);
	return proto == ETH_P_8021Q || proto == ETH_P_8021AD ? sizeof(*eth) + 4 : sizeof(*eth);
}

/* Rewrites the DSCP, keeping ECN; IPv4's header checksum is fixed incrementally. */
static __always_inline void set_dscp(struct __sk_buff *skb, __u8 version, __u8 dscp)
{
	__u32 off = l3_offset(skb);
	if (!off)
		return;
	__u8 head[2];
	if (bpf_skb_load_bytes(skb, off, head, 2))
		return;
	__u8 fresh[2] = { head[0], head[1] };
	if (version == 4) {
		fresh[1] = (dscp << 2) | (head[1] & 3);
		if (fresh[1] == head[1])
			return;
		__u16 from = *(__u16 *)head, to = *(__u16 *)fresh;
		bpf_l3_csum_replace(skb, off + IPV4_CSUM_OFF, from, to, 2);
	} else {
		/* version(4) | traffic class(8) | flow label(4 of 20) */
		__u8 tc = (head[0] << 4) | (head[1] >> 4);
		tc = (dscp << 2) | (tc & 3);
		fresh[0] = (head[0] & 0xf0) | (tc >> 4);
		fresh[1] = (tc << 4) | (head[1] & 0x0f);
	}
	bpf_skb_store_bytes(skb, off, fresh, 2, 0);
}

static __always_inline void count(struct qos_counters *c, __u32 segs, __u32 len, int dropped, int remarked)
{
	if (!c)
		return;
	c->packets += segs;
	c->bytes += len;
	c->drops += dropped ? segs : 0;
	c->remarks += remarked ? segs : 0;
}

SEC("tc")
int qos_egress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct qos_config *cfg = bpf_map_lookup_elem(&qos_config, &zero);
	if (!cfg || !cfg->enabled)
		return TC_ACT_UNSPEC;
	__u32 gen = cfg->active & 1;

	struct parsed p = {};
	int rc = parse_packet(skb, &p);
	if (rc == PARSE_NON_IP || !p.key.ip_version)
		return TC_ACT_UNSPEC;

	struct qos_lpm_key k = { .prefixlen = 8 + 128, .gen = gen };
	if (p.key.ip_version == 4) {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], p.key.src, 4);
	} else {
		__builtin_memcpy(k.addr, p.key.src, 16);
	}
	struct qos_ruleset *src = bpf_map_lookup_elem(&qos_src, &k);
	if (!src)
		return TC_ACT_UNSPEC;
	if (p.key.ip_version == 4)
		__builtin_memcpy(&k.addr[12], p.key.dst, 4);
	else
		__builtin_memcpy(k.addr, p.key.dst, 16);
	struct qos_ruleset *dst = bpf_map_lookup_elem(&qos_dst, &k);
	if (!dst)
		return TC_ACT_UNSPEC;

	struct match_ctx c = { .p = &p, .gen = gen, .ifindex = skb->ifindex, .found = -1 };
	/* Words with no candidate cost one AND; bpf_loop walks the bits of the others. */
#pragma unroll
	for (int w = 0; w < QOS_RULE_WORDS; w++) {
		c.bits = src->bits[w] & dst->bits[w];
		if (!c.bits)
			continue;
		c.word = w;
		bpf_loop(64, match_bit, &c, 0);
		if (c.found >= 0)
			break;
	}
	if (c.found < 0 || c.found >= QOS_MAX_RULES)
		return TC_ACT_UNSPEC;

	__u32 idx = gen * QOS_MAX_RULES + c.found;
	struct qos_rule *r = bpf_map_lookup_elem(&qos_rules, &idx);
	if (!r)
		return TC_ACT_UNSPEC;
	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u32 len = skb->len;
	__u32 cls = gen * QOS_MAX_CLASSES + (r->class_index & (QOS_MAX_CLASSES - 1));
	struct qos_counters *rc_ = bpf_map_lookup_elem(&qos_rule_counters, &idx);
	struct qos_counters *cc = bpf_map_lookup_elem(&qos_class_counters, &cls);

	__u8 dscp = r->set_dscp;
	int remarked = 0;
	if (r->police_rate && !police(idx, r, len)) {
		if (r->police_action == QOS_POLICE_DROP) {
			count(rc_, segs, len, 1, 0);
			count(cc, segs, len, 1, 0);
			return TC_ACT_SHOT;
		}
		dscp = r->police_dscp;
		remarked = 1;
	}
	if (dscp != QOS_ANY_DSCP && dscp != p.dscp)
		set_dscp(skb, p.key.ip_version, dscp & 0x3f);
	if (r->priority)
		skb->priority = r->priority;
	count(rc_, segs, len, 0, remarked);
	count(cc, segs, len, 0, remarked);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
