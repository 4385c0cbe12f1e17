/**
 * Parses the payload copy of an HTTP event: the request line (method, URL, version) and
 * the Host header, or the status line (version, status code). The kernel copied at most
 * HTTP_COPY_MAX bytes; a line without its CRLF inside a longer payload was cut.
 */

export interface ParsedHttp {
  kind: 'request' | 'response';
  method?: string;
  url?: string;
  host?: string;
  status?: number;
  version: string;
  truncated: boolean;
}

const REQUEST = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE) (\S*)(?: (HTTP\/1\.[01]))?$/;
const STATUS = /^(HTTP\/1\.[01]) (\d{3})(?: |$)/;

/** `text` is the copy (latin1); `payloadLen` is how long the payload really was. */
export function parseHttp(text: string, payloadLen: number): ParsedHttp | undefined {
  const eol = text.indexOf('\r\n');
  const cut = eol < 0 && payloadLen > text.length;
  const line = eol < 0 ? text : text.slice(0, eol);
  if (line.startsWith('HTTP/')) {
    const m = STATUS.exec(line);
    if (!m) return undefined;
    return { kind: 'response', version: m[1] ?? '', status: Number(m[2]), truncated: false };
  }
  if (cut) {
    // Only the start of the line arrived: the method is certain, the URL is a prefix.
    const sp = line.indexOf(' ');
    if (sp < 1) return undefined;
    return {
      kind: 'request',
      method: line.slice(0, sp),
      url: line.slice(sp + 1),
      version: '',
      truncated: true,
    };
  }
  const m = REQUEST.exec(line);
  if (!m) return undefined;
  const parsed: ParsedHttp = {
    kind: 'request',
    method: m[1] ?? '',
    url: m[2] ?? '',
    version: m[3] ?? '',
    truncated: false,
  };
  const host = hostHeader(text, eol);
  if (host !== undefined) parsed.host = host;
  return parsed;
}

/** The Host header's value, when its whole line is in the copy (before the blank line ending the headers). */
const HOST = /\r\nhost:[ \t]*([^\r\n]*?)[ \t]*\r\n/gi;

function hostHeader(text: string, from: number): string | undefined {
  const end = text.indexOf('\r\n\r\n', from);
  // Searched in place from the request line's end (no slice): a header line cannot cross a
  // CRLF, so a match is inside the headers exactly when it starts before the blank line.
  HOST.lastIndex = from;
  const m = HOST.exec(text);
  return m && (end < 0 || m.index < end) ? m[1] : undefined;
}
