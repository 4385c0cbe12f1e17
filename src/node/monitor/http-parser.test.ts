import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseControl } from './control.js';
import { newHttpLine, parseHttpAt } from './http-parser.js';
import type { HttpEvent } from './records.js';

/** What the tests compare: the line parsed from a string, with only the members it has. */
type ParsedHttp = Pick<HttpEvent, 'kind' | 'method' | 'url' | 'host' | 'status' | 'version' | 'truncated'>;

/** `text` is the copy (latin1); `payloadLen` is how long the payload really was. */
function parseHttp(text: string, payloadLen: number): ParsedHttp | undefined {
  const b = Buffer.from(text, 'latin1');
  const line = newHttpLine();
  if (!parseHttpAt(b, 0, b.length, payloadLen, line)) return undefined;
  const { kind, method, url, host, status, version, truncated } = line;
  if (kind === 'response') return { kind, version, status, truncated };
  const parsed: ParsedHttp = { kind, method, url, version, truncated };
  if (host !== undefined) parsed.host = host;
  return parsed;
}

test('request line, URL and Host header', () => {
  const text = 'GET /a/b?c=1 HTTP/1.1\r\nUser-Agent: x\r\nHost: example.mil:8080\r\n\r\n';
  assert.deepEqual(parseHttp(text, text.length), {
    kind: 'request',
    method: 'GET',
    url: '/a/b?c=1',
    version: 'HTTP/1.1',
    truncated: false,
    host: 'example.mil:8080',
  });
});

test('status line', () => {
  const text = 'HTTP/1.0 503 Service Unavailable\r\n\r\n';
  assert.deepEqual(parseHttp(text, text.length), {
    kind: 'response',
    version: 'HTTP/1.0',
    status: 503,
    truncated: false,
  });
});

test('a request line longer than the copy is reported cut, with the prefix', () => {
  const text = `POST /${'y'.repeat(600)}`.slice(0, 512);
  const parsed = parseHttp(text, 2000);
  assert.equal(parsed?.truncated, true);
  assert.equal(parsed?.method, 'POST');
  assert.equal(parsed?.url, text.slice(5));
  assert.equal(parsed?.host, undefined);
});

test('a Host header cut by the copy is not reported', () => {
  const text = 'GET / HTTP/1.1\r\nHost: exam';
  assert.equal(parseHttp(text, 100)?.host, undefined);
});

test('not HTTP: undefined', () => {
  assert.equal(parseHttp('GETX / HTTP/1.1\r\n', 20), undefined);
  assert.equal(parseHttp('HTTP/1.1 2x0 OK\r\n', 20), undefined);
});

test('control commands', () => {
  assert.deepEqual(parseControl('sample 10'), { kind: 'settings', settings: { sample: 10 } });
  assert.deepEqual(parseControl(' l7 off '), { kind: 'settings', settings: { l7: false } });
  assert.deepEqual(parseControl('disable eth0'), { kind: 'iface', iface: 'eth0', enabled: false });
  assert.throws(() => parseControl('sample 0'), /whole number >= 1/);
  assert.throws(() => parseControl('l7 maybe'), /on or off/);
  assert.throws(() => parseControl('reboot'), /unknown command "reboot"/);
});
