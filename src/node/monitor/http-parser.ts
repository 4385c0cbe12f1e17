/**
 * Parses the payload copy of an HTTP event: the request line (method, URL, version) and
 * the Host header, or the status line (version, status code). The kernel copied at most
 * HTTP_COPY_MAX bytes; a line without its CRLF inside a longer payload was cut.
 *
 * It reads the bytes where they lie (the ring buffer) and makes strings only of what it
 * reports: one string of the copy's start, cut, and no regular expression (docs/monitor.md,
 * "User side").
 */

/** What parseHttpAt found: every member set by each parse, so one object serves them all. */
export interface HttpLine {
  kind: 'request' | 'response';
  method: string | undefined;
  url: string | undefined;
  host: string | undefined;
  status: number | undefined;
  version: string;
  truncated: boolean;
}

/** The bytes the parser looks for. */
const [CR, LF, SP, TAB, COLON] = [0x0d, 0x0a, 0x20, 0x09, 0x3a] as const;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'].map(
  (name) => ({ name, bytes: Buffer.from(name, 'latin1') }),
);
const HTTP_SLASH = Buffer.from('HTTP/', 'latin1');
/** "HTTP/1." then 0 or 1: the versions the parser reports. */
const VERSION_BYTES = 8;

/** A JavaScript regular expression's \s, among latin1 characters. */
function isSpace(c: number): boolean {
  return c === SP || (c >= TAB && c <= CR) || c === 0xa0;
}

function startsWith(b: Buffer, at: number, end: number, prefix: Buffer): boolean {
  if (end - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[at + i] !== prefix[i]) return false;
  return true;
}

/** The version at b[at ..] ("HTTP/1.0" or "HTTP/1.1"), or undefined. */
function versionAt(b: Buffer, at: number, end: number): string | undefined {
  if (end - at < VERSION_BYTES || !startsWith(b, at, end, HTTP_SLASH)) return undefined;
  if (b[at + 5] !== 0x31 || b[at + 6] !== 0x2e) return undefined; // "1."
  const minor = b[at + 7];
  return minor === 0x30 ? 'HTTP/1.0' : minor === 0x31 ? 'HTTP/1.1' : undefined;
}

/** The offset of the first CRLF in b[from, end), or -1. */
function crlf(b: Buffer, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (b[i] === CR && b[i + 1] === LF) return i;
  return -1;
}

/** Whether a CRLF CRLF starts in b[from, before). */
function blankBefore(b: Buffer, from: number, before: number): boolean {
  for (let i = from; i < before; i++)
    if (b[i] === CR && b[i + 1] === LF && b[i + 2] === CR && b[i + 3] === LF) return true;
  return false;
}

/** Where hostHeader found the value: [hostStart, hostEnd). */
let hostStart = 0;
let hostEnd = 0;

/**
 * Whether the Host header's whole line is in the copy, before the blank line that ends the
 * headers: the first "\r\nHost:" (any case) from `from` whose line ends in CRLF; its value,
 * without the spaces and tabs around it, at [hostStart, hostEnd).
 */
function hostHeader(b: Buffer, from: number, end: number): boolean {
  for (let i = from; i + 7 <= end; i++) {
    if (b[i] !== CR || b[i + 1] !== LF || b[i + 6] !== COLON) continue;
    // "host" in any ASCII case: setting bit 5 lowers a letter and maps nothing else onto one.
    if (
      ((b[i + 2] as number) | 0x20) !== 0x68 ||
      ((b[i + 3] as number) | 0x20) !== 0x6f ||
      ((b[i + 4] as number) | 0x20) !== 0x73 ||
      ((b[i + 5] as number) | 0x20) !== 0x74
    )
      continue;
    let v = i + 7;
    while (v < end && (b[v] === SP || b[v] === TAB)) v++;
    let q = v;
    while (q < end && b[q] !== CR && b[q] !== LF) q++;
    if (q + 1 >= end || b[q] !== CR || b[q + 1] !== LF) continue; // the line is cut, or ends oddly
    let r = q;
    while (r > v && (b[r - 1] === SP || b[r - 1] === TAB)) r--;
    hostStart = v;
    hostEnd = r;
    return !blankBefore(b, from, i);
  }
  return false;
}

/**
 * Parses the copy at b[start, start + length) (latin1: one character a byte) into `out`;
 * `payloadLen` is how long the payload really was. False when it is not an HTTP line.
 */
export function parseHttpAt(
  b: Buffer,
  start: number,
  length: number,
  payloadLen: number,
  out: HttpLine,
): boolean {
  const end = start + length;
  const eol = crlf(b, start, end);
  const lineEnd = eol < 0 ? end : eol;
  out.method = undefined;
  out.url = undefined;
  out.host = undefined;
  out.status = undefined;
  out.truncated = false;
  if (startsWith(b, start, lineEnd, HTTP_SLASH)) {
    // "HTTP/1.x NNN", then a space or the line's end
    const version = versionAt(b, start, lineEnd);
    const code = start + VERSION_BYTES + 1;
    if (!version || lineEnd - code < 3 || b[code - 1] !== SP) return false;
    let status = 0;
    for (let i = code; i < code + 3; i++) {
      const d = (b[i] as number) - 0x30;
      if (d < 0 || d > 9) return false;
      status = status * 10 + d;
    }
    if (code + 3 < lineEnd && b[code + 3] !== SP) return false;
    out.kind = 'response';
    out.version = version;
    out.status = status;
    return true;
  }
  out.kind = 'request';
  if (eol < 0 && payloadLen > length) {
    // Only the start of the line arrived: the method is certain, the URL is a prefix.
    let sp = start;
    while (sp < lineEnd && b[sp] !== SP) sp++;
    if (sp === lineEnd || sp === start) return false;
    const text = b.toString('latin1', start, lineEnd);
    out.method = text.slice(0, sp - start);
    out.url = text.slice(sp + 1 - start);
    out.version = '';
    out.truncated = true;
    return true;
  }
  // METHOD SP URL [SP HTTP/1.x], the URL without white space, and nothing after
  let method: string | undefined;
  let u = start;
  for (const m of METHODS) {
    const sp = start + m.bytes.length;
    if (sp < lineEnd && b[sp] === SP && startsWith(b, start, lineEnd, m.bytes)) {
      method = m.name;
      u = sp + 1;
      break;
    }
  }
  if (method === undefined) return false;
  let q = u;
  while (q < lineEnd && !isSpace(b[q] as number)) q++;
  let version = '';
  if (q < lineEnd) {
    const v = b[q] === SP && lineEnd - (q + 1) === VERSION_BYTES ? versionAt(b, q + 1, lineEnd) : undefined;
    if (v === undefined) return false;
    version = v;
  }
  // One string of the copy, cut into what is reported: a call into C++ costs more than the copy.
  const host = hostHeader(b, eol < 0 ? start : eol, end);
  const text = b.toString('latin1', start, host ? hostEnd : q);
  out.method = method;
  out.url = text.slice(u - start, q - start);
  out.version = version;
  if (host) out.host = text.slice(hostStart - start, hostEnd - start);
  return true;
}

/** An HttpLine to parse into, with every member present (one shape for the engine). */
export function newHttpLine(): HttpLine {
  return {
    kind: 'request',
    method: undefined,
    url: undefined,
    host: undefined,
    status: undefined,
    version: '',
    truncated: false,
  };
}
