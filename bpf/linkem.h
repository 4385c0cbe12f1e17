/* linkem (bpf/linkem.bpf.c): link emulation (random loss, in bursts) on one direction of a link. The
 * structs it shares with TypeScript, mirrored member by member in src/bpf/types.ts and
 * checked against the object's BTF by src/bpf/types.test.ts. */
#ifndef TACMESH_LINKEM_H
#define TACMESH_LINKEM_H
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

#endif
