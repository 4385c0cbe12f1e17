/** node.yaml checks: each error names the file, the field and the problem. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseNodeConfig } from './config.js';

const example = readFileSync(fileURLToPath(new URL('../../../examples/node.yaml', import.meta.url)), 'utf8');

function refused(text: string, ...expected: RegExp[]): void {
  assert.throws(
    () => parseNodeConfig(text, 'node.yaml'),
    (err: Error) => {
      assert.ok(err instanceof ConfigError, err.message);
      for (const e of expected) assert.match(err.message, e);
      return true;
    },
  );
}

test('examples/node.yaml is a valid config, with defaults filled in', () => {
  const c = parseNodeConfig(example, 'examples/node.yaml');
  assert.equal(c.slices.length, 2);
  assert.equal(c.checkIntervalMs, 500);
  assert.equal(c.monitoring.sample, 1);
  assert.equal(c.slices[0]!.ceil, 100);
});

test('type and range errors name the field', () => {
  refused(example.replace('rateMbit: 100', 'rateMbit: fast'), /node\.yaml: uplinks\.0\.rateMbit: /);
  refused(
    example.replace('address: 10.77.101.10/24', 'address: 10.77.101.300/24'),
    /slices\.0\.members\.0\.address: expected an IPv4 address with prefix/,
  );
  refused(example.replace('prefix: tmnode1', 'prefix: node1'), /prefix: expected tm \+ 5/);
  refused(example.replace('share: 40', 'share: 0'), /slices\.0\.share/);
  refused(`${example}\nslizes: []\n`, /Unrecognized key.*slizes/);
});

test('consistency errors name the field: references, shares, subnets, duplicates', () => {
  refused(
    example.replace('uplink: wan0\n    gateway: 10.77.101.1/24', 'uplink: wan9\n    gateway: 10.77.101.1/24'),
    /slices\.0\.uplink: no uplink wan9/,
  );
  refused(
    example.replace('share: 40', 'share: 80'),
    /slices\.1\.share: the shares of uplink wan0 add up to 140 %/,
  );
  refused(
    example.replace('address: 10.77.101.11/24', 'address: 10.77.109.11/24'),
    /slices\.0\.members\.1\.address: 10\.77\.109\.11\/24 is outside/,
  );
  refused(
    example.replace('address: 10.77.101.11/24', 'address: 10.77.101.10/24'),
    /address 10\.77\.101\.10 is already used/,
  );
  refused(
    example.replace('name: video', 'name: office'),
    /slices\.1\.name: slice name office is already used/,
  );
  refused(example.replace('ceil: 100', 'ceil: 10'), /slices\.0\.ceil: ceil 10 is below the share 40/);
});
