/** Hand-built Ethernet/IPv4 frames for BPF_PROG_TEST_RUN (checksums are not checked there). */

function ipv4Frame(protocol: number, l4: Buffer, srcPort: number, dstPort: number): Buffer {
  const frame = Buffer.alloc(14 + 20 + l4.length);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame.writeUInt16BE(20 + l4.length, 16);
  frame[22] = 64;
  frame[23] = protocol;
  frame.set([10, 77, 40, 1], 26);
  frame.set([10, 77, 40, 2], 30);
  l4.copy(frame, 34);
  frame.writeUInt16BE(srcPort, 34);
  frame.writeUInt16BE(dstPort, 36);
  return frame;
}

export const TCP_SYN = 0x02;
export const TCP_PSH_ACK = 0x18;

export function tcpFrame(
  srcPort: number,
  dstPort: number,
  payload: string,
  { flags = TCP_PSH_ACK, seq = 0 } = {},
): Buffer {
  const body = Buffer.from(payload, 'latin1');
  const l4 = Buffer.alloc(20 + body.length);
  l4.writeUInt32BE(seq, 4);
  l4[12] = 0x50; // data offset 5
  l4[13] = flags;
  body.copy(l4, 20);
  return ipv4Frame(6, l4, srcPort, dstPort);
}

/** A UDP datagram of `payloadBytes` zero bytes (64 = the flood's datagrams). */
export function udpFrame(srcPort: number, dstPort: number, payloadBytes: number): Buffer {
  const l4 = Buffer.alloc(8 + payloadBytes);
  l4.writeUInt16BE(8 + payloadBytes, 4);
  return ipv4Frame(17, l4, srcPort, dstPort);
}
