/**
 * The payloads of the file frames (the frame types are in frame.ts): a manifest says what a
 * file is and which round this is, an end says a round is over and whether it was the last.
 * JSON, decoded by the receiver as untrusted input.
 */
export interface Manifest {
  /** Transfer id: the session id of the file's frames. */
  id: number;
  name: string;
  size: number;
  sha256: string;
  /** When the sender accepted the file (ISO 8601). */
  senderTime: string;
  chunkBytes: number;
  chunks: number;
  /** A file of a calibration run (`tacmesh diode calibrate`): checked, measured, not delivered. */
  calibration?: CalibrationStep;
}

/** Which step of which calibration run a file is, and the link rate it was sent at. */
export interface CalibrationStep {
  run: string;
  step: number;
  steps: number;
  rateMbit: number;
}

export interface ManifestPayload extends Manifest {
  round: number;
}

export interface EndPayload {
  round: number;
  final: boolean;
}

const MAX_NAME = 255;

export function encodeManifest(m: ManifestPayload): Buffer {
  return Buffer.from(JSON.stringify(m));
}

/** The manifest of a frame, or undefined if it is not a sound one. */
export function decodeManifest(payload: Buffer): ManifestPayload | undefined {
  try {
    const m = JSON.parse(payload.toString('utf8')) as ManifestPayload;
    const int = (v: unknown, min: number) => Number.isSafeInteger(v) && (v as number) >= min;
    const ok =
      typeof m?.name === 'string' &&
      m.name.length > 0 &&
      m.name.length <= MAX_NAME &&
      int(m.id, 1) &&
      int(m.size, 0) &&
      int(m.chunkBytes, 1) &&
      int(m.chunks, 1) &&
      int(m.round, 0) &&
      m.chunks === Math.max(1, Math.ceil(m.size / m.chunkBytes)) &&
      typeof m.sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(m.sha256) &&
      typeof m.senderTime === 'string' &&
      (m.calibration === undefined || soundCalibration(m.calibration));
    return ok ? m : undefined;
  } catch {
    return undefined;
  }
}

function soundCalibration(c: CalibrationStep): boolean {
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.run === 'string' &&
    /^[0-9a-f]{1,32}$/.test(c.run) &&
    Number.isSafeInteger(c.steps) &&
    c.steps >= 1 &&
    c.steps <= 100 &&
    Number.isSafeInteger(c.step) &&
    c.step >= 0 &&
    c.step < c.steps &&
    typeof c.rateMbit === 'number' &&
    c.rateMbit > 0 &&
    c.rateMbit <= 100_000
  );
}

export function decodeEnd(payload: Buffer): EndPayload | undefined {
  try {
    const e = JSON.parse(payload.toString('utf8')) as EndPayload;
    return Number.isSafeInteger(e?.round) && typeof e.final === 'boolean' ? e : undefined;
  } catch {
    return undefined;
  }
}

export function encodeEnd(e: EndPayload): Buffer {
  return Buffer.from(JSON.stringify(e));
}
