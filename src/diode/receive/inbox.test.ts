/**
 * The receiving side of files, in process: hostile file names, files that share an id,
 * done/ ageing out, and manifests that ask for too much (chunk size, chunk count, files at
 * once, disk space). Frames go straight to FileReceiver.onFrame, as the collector hands them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../audit.js';
import { type Frame, FrameType, Importance } from '../protocol/frame.js';
import { FileReceiver, type InboxConfig, NAME_MAX_BYTES, safeName } from './inbox.js';

const CHUNK = 1024;

function frame(type: FrameType, session: number, seq: number, payload: Buffer): Frame {
  return {
    type,
    flags: 0,
    importance: Importance.High,
    copy: 0,
    epoch: 1,
    linkSeq: 0,
    session,
    seq,
    block: 0,
    keyId: 0,
    payload,
    tag: Buffer.alloc(0),
  };
}

interface FileSpec {
  id: number;
  name: string;
  data: Buffer;
  senderTime?: string;
  size?: number;
  chunkBytes?: number;
}

function manifestFrame(f: FileSpec, round = 0): Frame {
  const size = f.size ?? f.data.length;
  const chunkBytes = f.chunkBytes ?? CHUNK;
  const m = {
    id: f.id,
    name: f.name,
    size,
    sha256: createHash('sha256').update(f.data).digest('hex'),
    senderTime: f.senderTime ?? '2026-01-01T00:00:00.000Z',
    chunkBytes,
    chunks: Math.max(1, Math.ceil(size / chunkBytes)),
    round,
  };
  return frame(FrameType.FileManifest, f.id, round, Buffer.from(JSON.stringify(m)));
}

/** A receiver on a fresh inbox; `send` delivers a whole file (manifest and chunks). */
function rig(overrides: Partial<InboxConfig> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-inbox-'));
  const auditFile = join(dir, 'audit.jsonl');
  const config: InboxConfig = {
    inbox: join(dir, 'inbox'),
    spool: join(dir, 'spool'),
    incompleteAfterMs: 120_000,
    maxFileBytes: 2 ** 40,
    reserveBytes: 0,
    persistEveryMs: 1000,
    maxIncomingFiles: 16,
    maxChunks: 2 ** 28,
    maxChunkBytes: 1440,
    rememberDoneMs: 7 * 86_400_000,
    ...overrides,
  };
  let r = new FileReceiver(config, new AuditLog(auditFile, 'receiver'));
  r.start();
  const send = (f: FileSpec, round = 0) => {
    r.onFrame(1, manifestFrame(f, round));
    for (let i = 0; i * CHUNK < f.data.length; i++)
      r.onFrame(1, frame(FrameType.FileData, f.id, i, f.data.subarray(i * CHUNK, (i + 1) * CHUNK)));
  };
  /** Waits for `n` files in the inbox (hashing and the rename are asynchronous). */
  const delivered = async (n: number) => {
    for (let i = 0; i < 200 && r.counters.delivered + r.counters.quarantined < n; i++)
      await new Promise((res) => setTimeout(res, 10));
    return readdirSync(config.inbox).sort();
  };
  const audit = () =>
    readFileSync(auditFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event: string; reason?: string; id?: number });
  const restart = () => {
    r.stop();
    r = new FileReceiver(config, new AuditLog(auditFile, 'receiver'));
    r.start();
  };
  return {
    config,
    get r() {
      return r;
    },
    send,
    delivered,
    audit,
    restart,
    close: () => {
      r.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('hostile names: cut at 255 bytes of UTF-8, no bidi controls, no path, an existing file never replaced', async () => {
  const x = rig();
  try {
    const long = 'é'.repeat(200); // 400 bytes of UTF-8 in 200 UTF-16 units
    x.send({ id: 1, name: long, data: Buffer.from('one') });
    x.send({ id: 2, name: 'invoice\u202Etxt.exe', data: Buffer.from('two') });
    x.send({ id: 3, name: '../../etc/passwd', data: Buffer.from('three') });
    writeFileSync(join(x.config.inbox, 'report.txt'), 'was here first');
    x.send({ id: 4, name: 'report.txt', data: Buffer.from('four') });
    const names = await x.delivered(4);
    assert.equal(x.r.counters.delivered, 4, 'all four delivered, none quarantined');
    for (const n of names) assert.ok(Buffer.byteLength(n) <= NAME_MAX_BYTES, `${Buffer.byteLength(n)} bytes`);
    assert.ok(names.includes('é'.repeat(127)), 'cut at 254 bytes: a character is never split');
    assert.ok(names.includes('invoicetxt.exe'));
    assert.ok(names.includes('passwd'));
    assert.equal(readFileSync(join(x.config.inbox, 'report.txt'), 'utf8'), 'was here first');
    assert.equal(readFileSync(join(x.config.inbox, 'report.txt.4'), 'utf8'), 'four');
    assert.equal(Buffer.byteLength(safeName('ü'.repeat(300), 11)), 244);
  } finally {
    x.close();
  }
});

test('two files with one id are two files; a repeated round of a received one is ignored and audited', async () => {
  const x = rig();
  try {
    const a = { id: 7, name: 'a.bin', data: Buffer.from('the first file with id 7') };
    const b = {
      id: 7,
      name: 'b.bin',
      data: Buffer.from('a later, different file that drew id 7 too'),
      senderTime: '2026-02-01T00:00:00.000Z',
    };
    x.send(a);
    await x.delivered(1);
    x.send(a, 1); // the carousel's second round of a
    x.send(b);
    assert.deepEqual(await x.delivered(2), ['a.bin', 'b.bin']);
    assert.equal(readFileSync(join(x.config.inbox, 'b.bin'), 'utf8'), b.data.toString());
    assert.equal(x.r.counters.idCollisions, 1);
    const ignored = x.audit().filter((e) => e.event === 'file-ignored');
    assert.equal(ignored.length, 1, 'the repeated round, audited once');
    assert.match(ignored[0]!.reason!, /already received/);
    // Also across a restart: b is known as done, by what it is.
    x.restart();
    x.send(b, 1);
    assert.equal(x.r.counters.ignored, 1);
  } finally {
    x.close();
  }
});

test('done/ ages out: a file seen long ago is received again; an empty done entry (a power cut) is dropped', async () => {
  const x = rig({ rememberDoneMs: 60_000 });
  try {
    const f = { id: 9, name: 'old.bin', data: Buffer.from('sent long ago') };
    x.send(f);
    await x.delivered(1);
    const done = join(x.config.spool, 'done');
    const entry = JSON.parse(readFileSync(join(done, '9'), 'utf8')) as { at: number };
    writeFileSync(join(done, '9'), JSON.stringify({ ...entry, at: entry.at - 2 * 86_400_000 }));
    writeFileSync(join(done, '10'), '');
    x.restart();
    assert.deepEqual(readdirSync(done), [], 'both gone');
    x.send(f, 3);
    assert.deepEqual(await x.delivered(1), ['old.bin', 'old.bin.9']);
  } finally {
    x.close();
  }
});

test('a manifest may not ask for too much: chunk size, chunk count, files at once', () => {
  const x = rig({ maxIncomingFiles: 3, maxChunks: 1000 });
  try {
    const empty = Buffer.alloc(0);
    x.r.onFrame(1, manifestFrame({ id: 1, name: 'c1', data: empty, size: 2 ** 30, chunkBytes: 1 }));
    x.r.onFrame(1, manifestFrame({ id: 2, name: 'many', data: empty, size: 1001 * CHUNK }));
    assert.equal(x.r.list().length, 0);
    for (let id = 10; id < 20; id++)
      x.r.onFrame(1, manifestFrame({ id, name: `s${id}`, data: Buffer.alloc(10) }));
    assert.equal(x.r.list().length, 3, 'files.maxIncomingFiles');
    const reasons = x
      .audit()
      .filter((e) => e.event === 'file-ignored')
      .map((e) => e.reason);
    assert.ok(reasons.some((r) => /chunk size 1 does not fit a frame/.test(r!)));
    assert.ok(reasons.some((r) => /more than files.maxChunks/.test(r!)));
    assert.ok(reasons.some((r) => /files.maxIncomingFiles/.test(r!)));
  } finally {
    x.close();
  }
});

test('free space is reserved per file: two files that fit one at a time do not pass together', () => {
  const st = statfsSync(tmpdir());
  const big = Math.floor(Number(st.bavail) * Number(st.bsize) * 0.6);
  const x = rig();
  try {
    const empty = Buffer.alloc(0);
    x.r.onFrame(1, manifestFrame({ id: 3, name: 'big1', data: empty, size: big, chunkBytes: 1440 }));
    x.r.onFrame(1, manifestFrame({ id: 4, name: 'big2', data: empty, size: big, chunkBytes: 1440 }));
    assert.deepEqual(
      x.r.list().map((f) => f.name),
      ['big1'],
    );
    assert.equal(x.r.counters.refusedDiskFull, 1);
  } finally {
    x.close();
  }
});

test('after the final round a file waits for the FEC blocks still being decoded, then is delivered whole', async () => {
  let repairing = true;
  const x = rig({ repairing: () => repairing });
  try {
    const data = Buffer.alloc(5 * CHUNK, 7);
    const f = { id: 9, name: 'late.bin', data };
    x.r.onFrame(1, manifestFrame(f));
    for (const i of [0, 1, 2, 4])
      x.r.onFrame(1, frame(FrameType.FileData, 9, i, data.subarray(i * CHUNK, (i + 1) * CHUNK)));
    x.r.onFrame(1, frame(FrameType.FileEnd, 9, 0, Buffer.from(JSON.stringify({ round: 0, final: true }))));
    // Past the 2 s after the final round that would find it incomplete, with a block still decoding.
    await new Promise((r) => setTimeout(r, 2300));
    x.r.tick();
    assert.equal(x.r.counters.quarantined, 0, 'not quarantined while its chunk may still be rebuilt');
    x.r.onFrame(1, frame(FrameType.FileData, 9, 3, data.subarray(3 * CHUNK, 4 * CHUNK)));
    repairing = false;
    assert.deepEqual(await x.delivered(1), ['late.bin']);
    assert.equal(readFileSync(join(x.config.inbox, 'late.bin')).compare(data), 0);
  } finally {
    x.close();
  }
});

test('after the final round, with no FEC block left to decode, a file missing a chunk is quarantined', async () => {
  const x = rig({ repairing: () => false });
  try {
    const data = Buffer.alloc(3 * CHUNK, 5);
    x.r.onFrame(1, manifestFrame({ id: 10, name: 'gap.bin', data }));
    x.r.onFrame(1, frame(FrameType.FileData, 10, 0, data.subarray(0, CHUNK)));
    x.r.onFrame(1, frame(FrameType.FileEnd, 10, 0, Buffer.from(JSON.stringify({ round: 0, final: true }))));
    await new Promise((r) => setTimeout(r, 2300));
    x.r.tick();
    assert.equal(x.r.counters.quarantined, 1);
    assert.deepEqual(await x.delivered(1), []);
  } finally {
    x.close();
  }
});
