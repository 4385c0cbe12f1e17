/**
 * For the in-process tests of the receiver: signed frames built as the sender builds them, and
 * a receiver on loopback with its state in a temporary directory. The tests feed datagrams to
 * `receiver.collector.receive()`, so every frame is processed, in order, with no kernel drops.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RecvConfig, recvSchema } from '../../../src/diode/config.js';
import { generateKey, KeyRing, TAG_BYTES } from '../../../src/diode/protocol/auth.js';
import {
  encodeHeader,
  FrameFlag,
  type FrameHeader,
  FrameType,
  Importance,
} from '../../../src/diode/protocol/frame.js';
import { Receiver } from '../../../src/diode/receive/receiver.js';

/** A temporary directory with one key; `close()` removes it. */
export function keyedDir(prefix: string): { dir: string; keyFile: string; ring: KeyRing; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const keyFile = join(dir, 'keys');
  generateKey(keyFile, 1);
  return {
    dir,
    keyFile,
    ring: new KeyRing(keyFile),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A frame signed with `ring` (every field not given: a data frame of epoch 1). */
export function signed(ring: KeyRing, h: Partial<FrameHeader>, payload: Buffer): Buffer {
  const header = encodeHeader(
    {
      type: FrameType.Data,
      importance: Importance.High,
      copy: 0,
      epoch: 1,
      linkSeq: 0,
      session: 1,
      seq: 1,
      block: 0,
      ...h,
      flags: FrameFlag.Authenticated | (h.flags ?? 0),
      keyId: ring.signingId,
    },
    payload.length,
    TAG_BYTES,
  );
  return Buffer.concat([header, payload, ring.tag(ring.signingId, header, payload)!]);
}

/** A UDP port on loopback that was free a moment ago. */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The receiver's config for `config` (validated as recv.yaml is), listening on loopback `port`. */
export function recvConfig(port: number, config: Record<string, unknown>): RecvConfig {
  return recvSchema.parse({ link: { listen: `127.0.0.1:${port}`, receiveBufferBytes: 65536 }, ...config });
}

/** A started receiver on loopback; stop() it in a finally. */
export async function startReceiver(config: Record<string, unknown>): Promise<Receiver> {
  const r = new Receiver(recvConfig(await freeUdpPort(), config));
  await r.start();
  return r;
}
