/* Packet parsing for tc programs: Ethernet, one 802.1Q tag, IPv4, IPv6 with extension
 * headers, TCP, UDP, ICMP/ICMPv6. Direct packet access with bounds checks: a header that
 * is not wholly in the linear area counts as malformed and parsing stops there. */
#ifndef TACMESH_PARSE_H
#define TACMESH_PARSE_H

#include <bpf/bpf_endian.h>
#include "flow_key.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#define IPV6_EXT_MAX 6

#define PARSE_OK 0
#define PARSE_NON_IP 1
#define PARSE_MALFORMED 2

struct parsed {
	struct flow_key key;
	__u8 dscp;
	__u8 tcp_flags;
	__u32 tcp_seq;
	__u32 l4_off;      /* offset of the TCP/UDP header from skb->data */
	__u32 payload_off; /* TCP: offset of the payload; 0 when there is none */
};

struct vlan_hdr_ {
	__be16 tci;
	__be16 proto;
};

static __always_inline int parse_l4(void *data, void *data_end, __u32 off, __u8 proto, struct parsed *p)
{
	p->l4_off = off;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;
		if ((void *)(th + 1) > data_end)
			return PARSE_MALFORMED;
		__u32 doff = th->doff * 4;
		if (doff < sizeof(*th))
			return PARSE_MALFORMED;
		p->key.src_port = bpf_ntohs(th->source);
		p->key.dst_port = bpf_ntohs(th->dest);
		/* byte 13 of the TCP header holds the eight flags */
		p->tcp_flags = ((__u8 *)th)[13];
		p->tcp_seq = bpf_ntohl(th->seq);
		p->payload_off = off + doff;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = data + off;
		if ((void *)(uh + 1) > data_end)
			return PARSE_MALFORMED;
		p->key.src_port = bpf_ntohs(uh->source);
		p->key.dst_port = bpf_ntohs(uh->dest);
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6_) {
		__u8 *icmp = data + off;
		if ((void *)(icmp + 2) > data_end)
			return PARSE_MALFORMED;
		p->key.dst_port = ((__u16)icmp[0] << 8) | icmp[1];
	}
	return PARSE_OK;
}

static __always_inline int parse_ipv4(void *data, void *data_end, __u32 off, struct parsed *p)
{
	struct iphdr *ip = data + off;
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	__u32 ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip))
		return PARSE_MALFORMED;
	p->key.ip_version = 4;
	p->key.protocol = ip->protocol;
	p->dscp = ip->tos >> 2;
	__builtin_memcpy(p->key.src, &ip->saddr, 4);
	__builtin_memcpy(p->key.dst, &ip->daddr, 4);
	/* a non-first fragment carries no L4 header */
	if (ip->frag_off & bpf_htons(0x1fff))
		return PARSE_OK;
	return parse_l4(data, data_end, off + ihl, ip->protocol, p);
}

static __always_inline int parse_ipv6(void *data, void *data_end, __u32 off, struct parsed *p)
{
	struct ipv6hdr *ip6 = data + off;
	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	p->key.ip_version = 6;
	p->dscp = ((ip6->priority << 4) | (ip6->flow_lbl[0] >> 4)) >> 2;
	__builtin_memcpy(p->key.src, &ip6->saddr, 16);
	__builtin_memcpy(p->key.dst, &ip6->daddr, 16);
	__u8 next = ip6->nexthdr;
	off += sizeof(*ip6);

#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
			__u8 *ext = data + off;
			if ((void *)(ext + 2) > data_end)
				return PARSE_MALFORMED;
			next = ext[0];
			off += (ext[1] + 1) * 8;
		} else if (next == IPPROTO_FRAGMENT) {
			__u8 *frag = data + off;
			if ((void *)(frag + 8) > data_end)
				return PARSE_MALFORMED;
			next = frag[0];
			off += 8;
			/* fragment offset (13 bits) non-zero: no L4 header in this one */
			if (((frag[2] << 8) | frag[3]) & 0xfff8) {
				p->key.protocol = next;
				return PARSE_OK;
			}
		} else if (next == IPPROTO_AH) {
			__u8 *ah = data + off;
			if ((void *)(ah + 2) > data_end)
				return PARSE_MALFORMED;
			next = ah[0];
			off += (ah[1] + 2) * 4;
		} else {
			break;
		}
	}
	p->key.protocol = next;
	return parse_l4(data, data_end, off, next, p);
}

/* Fills p from the packet; the caller sets ifindex and direction. */
static __always_inline int parse_packet(struct __sk_buff *skb, struct parsed *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	__u16 proto = bpf_ntohs(eth->h_proto);
	__u32 off = sizeof(*eth);
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
		struct vlan_hdr_ *vh = data + off;
		if ((void *)(vh + 1) > data_end)
			return PARSE_MALFORMED;
		proto = bpf_ntohs(vh->proto);
		off += sizeof(*vh);
	}
	if (proto == ETH_P_IP)
		return parse_ipv4(data, data_end, off, p);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(data, data_end, off, p);
	return PARSE_NON_IP;
}

#endif
