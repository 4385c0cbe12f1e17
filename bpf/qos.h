/* qos (bpf/qos.bpf.c): tagging and conditioning on tc egress. Two generations of every
 * table: user space fills the inactive one, then flips qos_config.active (atomic apply).
 * The structs it shares with TypeScript, mirrored member by member in src/bpf/types.ts and
 * checked against the object's BTF by src/bpf/types.test.ts. */
#ifndef TACMESH_QOS_H
#define TACMESH_QOS_H

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
