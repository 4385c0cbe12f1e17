import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, loadConfig, parseConfig, recvSchema, sendSchema } from './config.js';

const examples = new URL('../../examples/diode/', import.meta.url).pathname;

test('the example configs load, with defaults filled in', () => {
  const send = loadConfig(`${examples}send.yaml`, sendSchema);
  assert.equal(send.copies.everyMs, 10);
  assert.ok(send.tcp.length > 0 && send.tcp[0]!.destination.port > 0);
  const recv = loadConfig(`${examples}recv.yaml`, recvSchema);
  assert.equal(recv.dedup, 'window');
  assert.equal(send.fec?.expectedLoss, 0.01);
  assert.equal(send.fec?.blockFrames, 2048);
  assert.equal(send.files.rounds, 2);
  assert.ok(send.auth?.keyFile && recv.auth?.keyFile && recv.files.inbox);
  assert.ok(recv.link.receiveBufferBytes >= 4 << 20);
  assert.ok(readFileSync(`${examples}send.yaml`, 'utf8').includes('throughput'));
});

test('errors name the file, the field and the problem', () => {
  const bad = (text: string, schema: typeof sendSchema | typeof recvSchema) =>
    assert.throws(() => parseConfig('x.yaml', text, schema), ConfigError);
  const message = (text: string) => {
    try {
      parseConfig('send.yaml', text, sendSchema);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  assert.match(
    message('link: {to: "10.0.0.1", rateMbit: 10}\nudp: []'),
    /^send\.yaml: link\.to: expected host:port/m,
  );
  assert.match(
    message(
      'link: {to: "10.0.0.1:1", rateMbit: "fast"}\ntcp: [{name: a, listen: "0.0.0.0:1", destination: "1.1.1.1:1"}]',
    ),
    /send\.yaml: link\.rateMbit: .*number/,
  );
  assert.match(message('link: {to: "10.0.0.1:1", rateMbit: 1}'), /configure at least one tcp or udp service/);
  assert.match(
    message(
      'link: {to: "10.0.0.1:1", rateMbit: 1}\ntcp: [{name: a, listen: "0.0.0.0:1", destination: "db:5432"}]',
    ),
    /tcp\.0\.destination: the destination must be an IP address/,
  );
  assert.match(message('link: {to: "10.0.0.1:99999", rateMbit: 1}'), /link\.to: port 99999 is out of range/);
  assert.match(message('link: [unclosed'), /^send\.yaml: not valid YAML/);
  assert.match(message('link: {to: "10.0.0.1:1", rateMbit: 1, colour: red}\nudp: []'), /link: .*colour/);
  bad('link: {listen: "0.0.0.0:1"}\ndedup: xor', recvSchema);
  assert.throws(
    () => loadConfig('/nonexistent/recv.yaml', recvSchema),
    /\/nonexistent\/recv\.yaml: cannot read/,
  );
});
