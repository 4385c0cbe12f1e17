/* Structs shared by the kernel programs and their TypeScript decoders.
 * Every struct here has a mirror in src/bpf/types.ts that follows it field by field;
 * change both together (src/bpf/types.test.ts checks the sizes against the BTF). */
#ifndef TACMESH_TYPES_H
#define TACMESH_TYPES_H

/* linkem: link emulation (random loss) on one direction of a link. */
struct linkem_config {
	__u32 loss_ppm; /* packets dropped per million; 1000000 drops everything (one-way link) */
	__u32 _pad;
};

struct linkem_counters {
	__u64 passed_packets; /* GSO segments, as the wire would see them */
	__u64 passed_bytes;
	__u64 dropped_packets;
	__u64 dropped_bytes;
};

#endif
