/* struct flow_key: a packet's addresses, ports and protocol as parse.h fills them in,
 * flowmon's map key and the head of its HTTP events. Mirrored member by member in
 * src/bpf/types.ts, checked against the objects' BTF by src/bpf/types.test.ts. */
#ifndef TACMESH_FLOW_KEY_H
#define TACMESH_FLOW_KEY_H

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

#endif
