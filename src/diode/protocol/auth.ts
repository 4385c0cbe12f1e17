/**
 * Authenticated frames: every frame carries the id of a pre-shared key and a MAC over its
 * header and payload (HMAC-SHA-256, truncated to 16 bytes). Copies share their original's
 * tag: the copy byte is MACed as zero, so a copy costs no extra MAC and still differs from its
 * original in that byte only.
 *
 * Keys come from a key file that only its owner may read (mode 0600 or stricter, owned by
 * the user running the diode): one key per line, `<id> <64 hex digits>`, `#` comments. At
 * most two keys are live at once, which is what a rotation needs: the receiver accepts
 * both, the sender signs with the highest id (or the configured one). The file is re-read
 * when it changes (docs/diode.md: rotation procedure).
 *
 * Replays are stopped by the collector: the link sequence window within an epoch, and an
 * epoch never older than the newest one accepted (epochs are the sender's start time).
 */
import * as crypto from 'node:crypto';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { HEADER_BYTES } from './frame.js';

export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
export const MAX_LIVE_KEYS = 2;

export type AuthFailure = 'unauthenticated' | 'unknown-key' | 'bad-tag' | 'old-epoch';

/**
 * A tag check done ahead, where the datagram was read (the link reader's thread), as a byte:
 * 0 passed, 1 unauthenticated, 2 unknown key, 3 bad tag, UNCHECKED: not checked (not a frame
 * whose lengths add up: the frame decoder refuses it anyway).
 */
export const UNCHECKED = 255;
const VERDICTS = [undefined, 'unauthenticated', 'unknown-key', 'bad-tag'] as const;

/** The failure a verdict byte stands for (undefined: passed). */
export function verdictFailure(verdict: number): AuthFailure | undefined {
  return VERDICTS[verdict];
}

/** The tag check of a raw datagram, as a verdict byte. */
export function verdictOf(ring: KeyRing, datagram: Buffer): number {
  if (datagram.length < HEADER_BYTES) return UNCHECKED;
  const payload = datagram.readUInt16BE(30);
  if (HEADER_BYTES + payload + datagram[7]! !== datagram.length) return UNCHECKED;
  if ((datagram[4]! & 1) === 0) return 1; // frame.ts FrameFlag.Authenticated
  const failure = ring.verify(datagram, datagram.readUInt16BE(28), payload);
  return failure === undefined ? 0 : VERDICTS.indexOf(failure as (typeof VERDICTS)[number]);
}

export class KeyFileError extends Error {}

/** Parses and checks a key file; throws KeyFileError naming the file and the problem. */
export function readKeyFile(file: string): Map<number, Buffer> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new KeyFileError(`${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if ((st.mode & 0o077) !== 0)
      throw new KeyFileError(
        `${file}: mode ${(st.mode & 0o777).toString(8)} lets others read the keys; run: chmod 600 ${file}`,
      );
    const uid = process.getuid?.() ?? 0;
    if (st.uid !== uid && uid !== 0)
      throw new KeyFileError(`${file}: owned by uid ${st.uid}, not by this user (${uid})`);
    const keys = new Map<number, Buffer>();
    readFileSync(fd, 'utf8')
      .split('\n')
      .forEach((raw, i) => {
        const line = raw.replace(/#.*/, '').trim();
        if (!line) return;
        const m = /^(\d{1,5})\s+([0-9a-fA-F]{64})$/.exec(line);
        const id = Number(m?.[1]);
        if (!m || id < 1 || id > 0xffff)
          throw new KeyFileError(`${file}:${i + 1}: expected "<id 1-65535> <64 hex digits>"`);
        if (keys.has(id)) throw new KeyFileError(`${file}:${i + 1}: key id ${id} appears twice`);
        keys.set(id, Buffer.from(m[2]!, 'hex'));
      });
    if (keys.size === 0) throw new KeyFileError(`${file}: no key`);
    if (keys.size > MAX_LIVE_KEYS)
      throw new KeyFileError(
        `${file}: ${keys.size} keys; at most ${MAX_LIVE_KEYS} may be live (remove the retired one)`,
      );
    return keys;
  } finally {
    closeSync(fd);
  }
}

/** Writes a new random key with `id` into `file` (created 0600, or appended to). */
export function generateKey(file: string, id: number): void {
  let existing = '';
  try {
    existing = readFileSync(file, 'utf8');
    readKeyFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== undefined || !existing) existing = '';
    else throw err;
  }
  const line = `${id} ${randomBytes(KEY_BYTES).toString('hex')}\n`;
  writeFileSync(file, existing + (existing && !existing.endsWith('\n') ? '\n' : '') + line, { mode: 0o600 });
  readKeyFile(file);
}

/** SHA-256's block: HMAC's pads are one block each. */
const BLOCK_BYTES = 64;
const DIGEST_BYTES = 32;

/** A key's HMAC pads: the inner one followed by room for a frame, the outer one followed by room for the inner digest. */
interface Pads {
  inner: Buffer;
  outer: Buffer;
}

function padsOf(key: Buffer): Pads {
  const inner = Buffer.alloc(BLOCK_BYTES + HEADER_BYTES + 0xffff, 0);
  const outer = Buffer.alloc(BLOCK_BYTES + DIGEST_BYTES, 0);
  for (let i = 0; i < BLOCK_BYTES; i++) {
    inner[i] = (key[i] ?? 0) ^ 0x36;
    outer[i] = (key[i] ?? 0) ^ 0x5c;
  }
  return { inner, outer };
}

/**
 * The one-shot hash (Node.js 20.12 and later): HMAC-SHA-256 as its definition, two hashes over
 * the key's pads, without the two objects createHmac makes per frame — a fifth less CPU per
 * tag at 1 Gbit/s, the same tag.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer })
  .hash;

/** The live keys of a key file, re-read when the file changes. */
export class KeyRing {
  /** Each live key with its HMAC pads. */
  private keys: Map<number, { key: Buffer; pads: Pads }>;
  private mtimeMs: number;
  /** The key id frames are signed with. */
  signingId: number;

  constructor(
    readonly file: string,
    private readonly fixedId?: number,
  ) {
    ({ keys: this.keys, signingId: this.signingId } = this.load());
    this.mtimeMs = statSync(file).mtimeMs;
  }

  /** The key file's keys and the signing id, all checked before any is used. */
  private load(): { keys: Map<number, { key: Buffer; pads: Pads }>; signingId: number } {
    const keys = readKeyFile(this.file);
    return {
      signingId: this.pickSigningId(keys),
      keys: new Map([...keys].map(([id, key]) => [id, { key, pads: padsOf(key) }])),
    };
  }

  /** Re-reads the file if it changed; keeps the old keys (and says why) if the new file is bad. */
  reload(): { changed: boolean; error?: string } {
    let mtime: number;
    try {
      mtime = statSync(this.file).mtimeMs;
    } catch (err) {
      return { changed: false, error: (err as Error).message };
    }
    if (mtime === this.mtimeMs) return { changed: false };
    this.mtimeMs = mtime;
    try {
      ({ keys: this.keys, signingId: this.signingId } = this.load());
      return { changed: true };
    } catch (err) {
      return { changed: false, error: (err as Error).message };
    }
  }

  ids(): number[] {
    return [...this.keys.keys()].sort((a, b) => a - b);
  }

  private pickSigningId(keys: Map<number, Buffer>): number {
    if (this.fixedId !== undefined) {
      if (!keys.has(this.fixedId)) throw new KeyFileError(`${this.file}: no key with id ${this.fixedId}`);
      return this.fixedId;
    }
    return Math.max(...keys.keys());
  }

  /** The tag of a frame: header (copy byte as 0) and payload under key `id`. */
  tag(id: number, header: Buffer, payload: Buffer): Buffer | undefined {
    const live = this.keys.get(id);
    if (!live) return undefined;
    if (oneShot && header.length === HEADER_BYTES) {
      const { inner, outer } = live.pads;
      header.copy(inner, BLOCK_BYTES);
      inner[BLOCK_BYTES + 6] = 0;
      payload.copy(inner, BLOCK_BYTES + HEADER_BYTES);
      oneShot('sha256', inner.subarray(0, BLOCK_BYTES + HEADER_BYTES + payload.length), 'buffer').copy(
        outer,
        BLOCK_BYTES,
      );
      return oneShot('sha256', outer, 'buffer').subarray(0, TAG_BYTES);
    }
    const mac = createHmac('sha256', live.key);
    if (header[6] === 0) mac.update(header);
    else {
      const h = Buffer.from(header);
      h[6] = 0;
      mac.update(h);
    }
    return mac.update(payload).digest().subarray(0, TAG_BYTES);
  }

  /** Checks the tag of a decoded datagram (header, payload, tag at the end). */
  verify(datagram: Buffer, keyId: number, payloadLength: number): AuthFailure | undefined {
    if (keyId === 0 || datagram[7] !== TAG_BYTES) return 'unauthenticated';
    const end = HEADER_BYTES + payloadLength;
    const expected = this.tag(
      keyId,
      datagram.subarray(0, HEADER_BYTES),
      datagram.subarray(HEADER_BYTES, end),
    );
    if (!expected) return 'unknown-key';
    return timingSafeEqual(expected, datagram.subarray(end, end + TAG_BYTES)) ? undefined : 'bad-tag';
  }
}
