/** Decodes struct flow_key (bpf/types.h) into a FlowKey, with the interface named. */
import ipaddr from 'ipaddr.js';
import { flowKeyLayout as L } from '../../bpf/types.js';
import type { FlowKey } from './records.js';

export function formatAddress(raw: Buffer, offset: number, version: number): string {
  if (version === 4) return `${raw[offset]}.${raw[offset + 1]}.${raw[offset + 2]}.${raw[offset + 3]}`;
  return ipaddr.fromByteArray([...raw.subarray(offset, offset + 16)]).toString();
}

export function decodeFlowKey(raw: Buffer, offset: number, ifaceName: (ifindex: number) => string): FlowKey {
  const ipVersion = raw[offset + L.ipVersion] === 6 ? 6 : 4;
  return {
    iface: ifaceName(raw.readUInt32LE(offset + L.ifindex)),
    direction: raw[offset + L.direction] === 1 ? 'egress' : 'ingress',
    ipVersion,
    src: formatAddress(raw, offset + L.src, ipVersion),
    dst: formatAddress(raw, offset + L.dst, ipVersion),
    srcPort: raw.readUInt16LE(offset + L.srcPort),
    dstPort: raw.readUInt16LE(offset + L.dstPort),
    protocol: raw[offset + L.protocol] ?? 0,
  };
}
