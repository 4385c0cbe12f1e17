/**
 * What a node batch is on the bus, declared once: the stream and subject it goes to, its
 * message id (JetStream drops a resent id as a duplicate; the id names the domain, so a
 * division's stream, which sources several brigades', holds each brigade's batches even when
 * their nodes share names and seqs), and its payload, the decoded
 * batch as JSON (rows already placed by the tower's locality map, so every reader of the
 * stream stores the same rows). A batch larger than the servers' max_payload is split into
 * parts by records, the same way every time, so a resent batch has the same ids.
 */
import type { IngestBatch } from '../model.js';
import { RECORD_TABLES } from '../store/tables.js';

const BATCH_KEYS = Object.keys(RECORD_TABLES) as (keyof typeof RECORD_TABLES)[];

export class BadBusMessage extends Error {}

export function streamName(domain: string): string {
  return `FLOWS_${domain}`;
}

/** Every subject of a domain's stream. */
export function domainSubjects(domain: string): string {
  return `flows.${domain}.>`;
}

/** Every domain's subjects: what a division's stream holds, its own and its brigades'. */
export const ALL_FLOW_SUBJECTS = 'flows.>';

/** A node name as one subject token: node names hold no `_`, so `.` → `_` is reversible. */
export function nodeSubject(domain: string, node: string): string {
  return `flows.${domain}.${node.replaceAll('.', '_')}`;
}

export function nodeOfSubject(subject: string): string {
  return (subject.split('.')[2] ?? '').replaceAll('_', '.');
}

export function domainOfSubject(subject: string): string {
  return subject.split('.')[1] ?? '';
}

export interface BusMessage {
  id: string;
  data: Uint8Array;
}

function recordCount(b: IngestBatch): number {
  return BATCH_KEYS.reduce((n, k) => n + b[k].length, 0);
}

/** The batch with only records [from, to) of its lists taken end to end. */
function slice(b: IngestBatch, from: number, to: number): IngestBatch {
  const out: IngestBatch = { ...b, flows: [], http: [], stats: [], links: [], routes: [] };
  let at = 0;
  for (const k of BATCH_KEYS) {
    const list = b[k] as unknown[];
    const lo = Math.max(from - at, 0);
    const hi = Math.min(to - at, list.length);
    if (hi > lo) (out[k] as unknown[]) = list.slice(lo, hi);
    at += list.length;
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The batch of a node of `domain` as messages of at most `maxBytes` each (one, unless it is too big). */
export function encodeBatch(domain: string, b: IngestBatch, maxBytes: number): BusMessage[] {
  const id = `${domain}/${b.node}:${b.firstSeq}-${b.lastSeq}`;
  const parts: IngestBatch[] = [];
  const split = (part: IngestBatch, n: number): Uint8Array[] => {
    const data = encoder.encode(JSON.stringify(part));
    if (data.length <= maxBytes) {
      parts.push(part);
      return [data];
    }
    if (n <= 1)
      throw new Error(
        `one record of ${b.node} is ${data.length} bytes, more than the bus takes (${maxBytes})`,
      );
    const half = Math.ceil(n / 2);
    return [...split(slice(part, 0, half), half), ...split(slice(part, half, n), n - half)];
  };
  const datas = split(b, recordCount(b));
  if (datas.length === 1) return [{ id, data: datas[0] as Uint8Array }];
  return datas.map((data, i) => ({ id: `${id}/${i + 1}of${datas.length}`, data }));
}

/** A message of the stream back to a batch; throws BadBusMessage when it is not one of ours. */
export function decodeBatch(subject: string, data: Uint8Array): IngestBatch {
  let b: IngestBatch;
  try {
    b = JSON.parse(decoder.decode(data)) as IngestBatch;
  } catch (err) {
    throw new BadBusMessage(`not JSON: ${(err as Error).message}`);
  }
  if (typeof b !== 'object' || b === null || typeof b.node !== 'string')
    throw new BadBusMessage('not a batch: no node');
  if (b.node !== nodeOfSubject(subject))
    throw new BadBusMessage(`a batch of node "${b.node.slice(0, 64)}" on the subject ${subject}`);
  if (!Number.isSafeInteger(b.firstSeq) || !Number.isSafeInteger(b.lastSeq))
    throw new BadBusMessage('not a batch: no seqs');
  for (const k of BATCH_KEYS) {
    if (!Array.isArray(b[k])) throw new BadBusMessage(`not a batch: ${k} is not a list`);
    for (const r of b[k] as { seq?: unknown }[])
      if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.seq))
        throw new BadBusMessage(`not a batch: a record of ${k} has no seq`);
  }
  return b;
}
