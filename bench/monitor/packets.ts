/** Hand-built Ethernet/IPv4/TCP frames for BPF_PROG_TEST_RUN (checksums are not checked there). */

export function tcpFrame(srcPort: number, dstPort: number, payload: string): Buffer {
  const body = Buffer.from(payload, 'latin1');
  const frame = Buffer.alloc(14 + 20 + 20 + body.length);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame.writeUInt16BE(20 + 20 + body.length, 16);
  frame[22] = 64;
  frame[23] = 6;
  frame.set([10, 77, 40, 1], 26);
  frame.set([10, 77, 40, 2], 30);
  frame.writeUInt16BE(srcPort, 34);
  frame.writeUInt16BE(dstPort, 36);
  frame[46] = 0x50; // data offset 5
  frame[47] = 0x18; // PSH ACK
  body.copy(frame, 54);
  return frame;
}
