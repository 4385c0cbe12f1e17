/**
 * Signed-frame fuzzing: a million frames with valid tags and hostile fields, fed to a running
 * receiver in process — UDP to port 0 and to the unspecified address, file manifests with
 * chunkBytes 1 and absurd sizes, FEC repairs with extreme K and T and a new block each,
 * 10^5 TCP sessions, opens to host names, empty chunks of unknown files, garbage heartbeats.
 * The receiver must not throw, must hold its tables within their caps, must not grow its
 * memory without bound, and must still deliver honest traffic afterwards.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { keyedDir, recvConfig, signed, startReceiver } from '../../../test/support/diode/signed.js';
import { diodeLog as log } from '../../shared/log.js';
import {
  addressBytes,
  encodeFrame,
  encodeOpen,
  encodeUdpPrefix,
  FrameFlag,
  FrameType,
  Importance,
} from '../protocol/frame.js';
import { MAX_BLOCK_SYMBOLS } from '../protocol/raptorq.js';
import { Collector } from './collector.js';

log.level = process.env.TACMESH_LOG_LEVEL ?? 'error'; // a million hostile frames log a lot of warnings

/** Memory still reachable (heap and buffers), after a full garbage collection. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function retained(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const FRAMES = 1_000_000;
const SESSIONS = 100_000;
const MAX_SESSIONS = 1024;
const MAX_FILES = 8;
const MB = 1024 * 1024;

test('a million signed frames with hostile fields: no crash, bounded tables and memory, honest traffic still delivered', async (t) => {
  const k = keyedDir('tacmesh-hostile-');
  const inbox = join(k.dir, 'inbox');
  const receiver = await startReceiver({
    auth: { keyFile: k.keyFile },
    // An open receiver (no tcp.allow): every frame reaches its handler's own checks.
    insecure: true,
    stateDir: join(k.dir, 'state'),
    tcp: { maxSessions: MAX_SESSIONS },
    files: { inbox, maxIncomingFiles: MAX_FILES },
    audit: { file: join(k.dir, 'audit.jsonl') },
  });
  const udp = (host: string, port: number) =>
    Buffer.concat([encodeUdpPrefix(addressBytes(host), port), Buffer.from('x')]);
  const manifest = (id: number, size: number, chunkBytes: number) =>
    Buffer.from(
      JSON.stringify({
        id,
        name: `f${id}`,
        size,
        sha256: 'a'.repeat(64),
        senderTime: '2026-01-01T00:00:00Z',
        chunkBytes,
        chunks: Math.max(1, Math.ceil(size / chunkBytes)),
        round: 0,
      }),
    );
  const hostile: ((i: number) => { h: Parameters<typeof signed>[1]; p: Buffer })[] = [
    // UDP to port 0 (dgram.send throws) and to 0.0.0.0
    () => ({ h: { type: FrameType.Udp, importance: Importance.Low }, p: udp('127.0.0.1', 0) }),
    () => ({ h: { type: FrameType.Udp, importance: Importance.Low }, p: udp('0.0.0.0', 9) }),
    // a manifest with chunkBytes 1: a bitmap of size/8 bytes, a loop of size iterations
    (i) => ({ h: { type: FrameType.FileManifest, session: i + 1 }, p: manifest(i + 1, 2 ** 30, 1) }),
    // a plausible manifest of a new file each time: at most MAX_FILES at once
    (i) => ({ h: { type: FrameType.FileManifest, session: i + 1 }, p: manifest(i + 1, 10 * MB, 1024) }),
    // FEC repairs: K at the limit and beyond, T odd and huge, a new block each
    (i) => ({
      h: {
        type: FrameType.Repair,
        flags: FrameFlag.Fec,
        session: ((MAX_BLOCK_SYMBOLS << 16) | 0xffff) >>> 0,
        seq: MAX_BLOCK_SYMBOLS + (i % 1000),
        block: i,
      },
      p: Buffer.alloc(1024),
    }),
    (i) => ({
      h: { type: FrameType.Repair, flags: FrameFlag.Fec, session: (0xffff << 16) >>> 0, seq: 0, block: i },
      p: Buffer.alloc(1001),
    }),
    // FEC sources pointing at blocks far away
    (i) => ({
      h: { type: FrameType.Data, flags: FrameFlag.Fec, session: 7, seq: 1, block: i },
      p: Buffer.alloc(8),
    }),
    // TCP: data of 10^5 sessions that never opened; opens to names and to port 0
    (i) => ({
      h: { type: FrameType.Data, session: 1_000_000 + (i % SESSIONS), seq: 1 + (i % 50) },
      p: Buffer.alloc(1),
    }),
    (i) => ({
      h: { type: FrameType.Open, session: 5_000_000 + i, seq: 0 },
      p: encodeOpen({
        service: 's',
        destination: { host: i % 2 ? 'localhost' : '127.0.0.1', port: i % 2 ? 9 : 0 },
        client: { address: '10.77.0.1', port: 1 },
      }),
    }),
    // chunks of files never announced, empty; garbage heartbeats; garbage ends
    (i) => ({ h: { type: FrameType.FileData, session: 9_000_000 + i, seq: 0 }, p: Buffer.alloc(0) }),
    () => ({ h: { type: FrameType.Heartbeat, session: 0, seq: 0 }, p: Buffer.from('not a heartbeat') }),
    (i) => ({ h: { type: FrameType.FileEnd, session: i + 1, seq: 0 }, p: Buffer.from('{"round":') }),
  ];
  const epoch = 4242;
  let linkSeq = 0;
  let repairSeq = 0;
  const before = retained();
  let peak = 0;
  try {
    for (let i = 0; i < FRAMES; i++) {
      const { h, p } = hostile[i % hostile.length]!(Math.floor(i / hostile.length));
      const repair = h.type === FrameType.Repair;
      const frame = signed(k.ring, { epoch, linkSeq: repair ? repairSeq++ : linkSeq++, ...h }, p);
      // A buffer of its own, as a socket gives (not a slice of a shared pool).
      const datagram = Buffer.allocUnsafeSlow(frame.length);
      frame.copy(datagram);
      receiver.collector.receive(datagram); // must not throw
      if (i % 20_000 === 0) await tick(); // timers and I/O of the receiver run too
      if (i % 100_000 === 99_999) peak = Math.max(peak, retained());
    }
    const s = receiver.stats();
    t.diagnostic(
      `retained heap+buffers at most ${Math.round(peak / MB)} MiB (from ${Math.round(before / MB)}); ` +
        `handler errors ${JSON.stringify(s.link.handlerErrors)}; sessions refused ${s.tcp.refusedTooMany}`,
    );
    assert.equal(s.link.datagrams, FRAMES);
    assert.deepEqual(s.link.handlerErrors, {}, 'the decoders refuse what the handlers could not take');
    assert.ok(s.udp.malformed >= FRAMES / hostile.length, 'UDP to port 0 and 0.0.0.0 counted as malformed');
    assert.ok(s.tcp.active.length <= MAX_SESSIONS, `${s.tcp.active.length} sessions held`);
    assert.ok(s.tcp.refusedTooMany > 0);
    assert.ok(s.files.incoming.length <= MAX_FILES, `${s.files.incoming.length} files incoming`);
    assert.ok(peak - before < 256 * MB, `retained memory grew to ${Math.round(peak / MB)} MiB`);
    const audit = readFileSync(join(k.dir, 'audit.jsonl'), 'utf8');
    assert.match(audit, /"event":"file-ignored".*chunk size 1 does not fit a frame/);

    // Honest traffic still goes through: a small file, whole.
    const data = Buffer.from('honest file after the storm\n');
    const sha256 = createHash('sha256').update(data).digest('hex');
    const id = 77_777_777;
    const m = Buffer.from(
      JSON.stringify({
        id,
        name: 'honest.txt',
        size: data.length,
        sha256,
        senderTime: '2026-01-02T00:00:00Z',
        chunkBytes: 1024,
        chunks: 1,
        round: 0,
      }),
    );
    // Room for it: the files the storm opened are quarantined when the sender "ends" them.
    for (const f of s.files.incoming)
      receiver.collector.receive(
        signed(
          k.ring,
          { type: FrameType.FileEnd, epoch, linkSeq: linkSeq++, session: f.id, seq: 0 },
          Buffer.from('{"round":0,"final":true}'),
        ),
      );
    // An incomplete file goes to quarantine 2 s after its final round.
    for (let i = 0; i < 200 && receiver.stats().files.incoming.length > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    receiver.collector.receive(
      signed(k.ring, { type: FrameType.FileManifest, epoch, linkSeq: linkSeq++, session: id, seq: 0 }, m),
    );
    receiver.collector.receive(
      signed(k.ring, { type: FrameType.FileData, epoch, linkSeq: linkSeq++, session: id, seq: 0 }, data),
    );
    for (let i = 0; i < 100 && !readdirSync(inbox).includes('honest.txt'); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(readFileSync(join(inbox, 'honest.txt'), 'utf8'), data.toString());
  } finally {
    receiver.stop();
    k.close();
  }
});

test('a handler that throws drops its frame, counted by kind; the collector goes on', () => {
  const k = keyedDir('tacmesh-guard-');
  let heartbeats = 0;
  const collector = new Collector(recvConfig(47998, { insecure: true, stateDir: join(k.dir, 'state') }), {
    session: () => {
      throw new Error('a session handler bug');
    },
    udp: () => {
      throw new Error('a UDP handler bug');
    },
    heartbeat: () => {
      heartbeats++;
    },
  });
  try {
    const frame = (type: FrameType, linkSeq: number) =>
      encodeFrame(
        {
          type,
          flags: 0,
          importance: Importance.High,
          copy: 0,
          epoch: 1,
          linkSeq,
          session: 1,
          seq: 1,
          block: 0,
          keyId: 0,
        },
        Buffer.from('x'),
      );
    for (let i = 0; i < 10; i++) collector.receive(frame(i % 2 ? FrameType.Data : FrameType.Udp, i));
    collector.receive(frame(FrameType.Heartbeat, 10));
    assert.deepEqual(collector.snapshot().handlerErrors, { udp: 5, session: 5 });
    assert.equal(heartbeats, 1, 'the next frame is handled as usual');
  } finally {
    collector.close();
    k.close();
  }
});
