import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { recvSchema, sendSchema } from '../src/diode/config.js';
import { loadNodeConfig } from '../src/node/agent/config.js';
import { loadConfig, parseConfig } from '../src/shared/config.js';
import { run } from '../src/shared/exec.js';
import { siteSchema, towerConfigSchema } from '../src/tower/config.js';

const root = new URL('..', import.meta.url).pathname;
const units = readdirSync(`${root}deploy/systemd`).filter((f) => f.endsWith('.service'));

test('the example configs pass their schemas', () => {
  const tower = loadConfig(`${root}examples/tower.yaml`, towerConfigSchema);
  assert.equal(tower.metrics?.listen, '127.0.0.1:9109', 'metrics on loopback');
  loadConfig(`${root}examples/site.yaml`, siteSchema);
  loadNodeConfig(`${root}examples/node.yaml`);
});

test('the systemd units: one per service, clean for systemd-analyze, hardened', async () => {
  assert.deepEqual(units.sort(), [
    'tacmesh-diode-recv.service',
    'tacmesh-diode-send.service',
    'tacmesh-node.service',
    'tacmesh-tower.service',
  ]);
  for (const unit of units) {
    const path = `${root}deploy/systemd/${unit}`;
    const verify = await run('systemd-analyze', ['verify', path]);
    // verify loads the machine's other units too; what it says of theirs is not ours to fix
    // (irtt's Debian unit runs as nobody, say).
    const others = /^\/(?:usr\/)?lib\/systemd\/system\/(?!tacmesh-)[^:]+:\d+: /;
    const ours = verify.stderr
      .split('\n')
      .filter((l) => l.trim() && !others.test(l))
      .join('\n');
    assert.equal(ours, '', `${unit}: ${verify.stderr}`);
    const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', path]);
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(stdout)?.[1]);
    // The node needs CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN and network namespaces: it scores worse.
    const most = unit === 'tacmesh-node.service' ? 5.5 : 2;
    assert.ok(exposure <= most, `${unit}: exposure ${exposure} (at most ${most})`);
  }
});

test('tower metrics: off without the section, on loopback by default with it', () => {
  const base = 'pki: { dir: /etc/tacmesh/pki }\ntokens: /etc/tacmesh/tokens.yaml\n';
  assert.equal(parseConfig('t.yaml', base, towerConfigSchema).metrics, undefined);
  assert.deepEqual(parseConfig('t.yaml', `${base}metrics: {}\n`, towerConfigSchema).metrics, {
    listen: '127.0.0.1:9109',
  });
});

/** Where a unit lets its service write for good: its State/Logs/Cache/RuntimeDirectory= and ReadWritePaths=. */
function writablePaths(unit: string): string[] {
  const text = readFileSync(`${root}deploy/systemd/${unit}`, 'utf8');
  const roots: Record<string, string> = {
    StateDirectory: '/var/lib',
    LogsDirectory: '/var/log',
    CacheDirectory: '/var/cache',
    RuntimeDirectory: '/run',
  };
  const out: string[] = [];
  for (const [, key, value] of text.matchAll(/^(\w+)=(.*)$/gm)) {
    const words = value!.trim().split(/\s+/).filter(Boolean);
    if (key! in roots) out.push(...words.map((w) => `${roots[key!]}/${w}`));
    if (key === 'ReadWritePaths') out.push(...words.map((w) => w.replace(/^-/, '')));
  }
  // PrivateTmp=yes: /tmp and /var/tmp are the service's own and go at every restart.
  assert.match(text, /^PrivateTmp=yes$/m, unit);
  assert.match(text, /^ProtectSystem=strict$/m, unit);
  return out;
}

const under = (path: string, dirs: string[]) => dirs.some((d) => path === d || path.startsWith(`${d}/`));

test('every path the diode example configs write to is writable, and lasting, under their systemd unit', () => {
  const send = loadConfig(`${root}examples/diode/send.yaml`, sendSchema);
  const recv = loadConfig(`${root}examples/diode/recv.yaml`, recvSchema);
  const cases = [
    {
      unit: 'tacmesh-diode-send.service',
      paths: {
        'store.dir': send.store.dir,
        'files.outbox': send.files.outbox,
        'audit.file': send.audit.file,
        'stats.file': send.stats.file,
      },
    },
    {
      unit: 'tacmesh-diode-recv.service',
      paths: {
        stateDir: recv.stateDir,
        'files.inbox': recv.files.inbox,
        'files.spool': recv.files.spool,
        'tcp.store.dir': recv.tcp.store?.dir,
        'audit.file': recv.audit.file,
        'stats.file': recv.stats.file,
      },
    },
  ];
  for (const { unit, paths } of cases) {
    const writable = writablePaths(unit);
    assert.ok(writable.length > 0, unit);
    for (const [field, path] of Object.entries(paths)) {
      if (path === undefined) continue;
      assert.ok(under(path, writable), `${unit}: ${field} ${path} is not under ${writable.join(', ')}`);
    }
  }
  // The key file is read from /etc/tacmesh, which both units may read.
  assert.match(send.auth!.keyFile, /^\/etc\/tacmesh\//);
  assert.match(recv.auth!.keyFile, /^\/etc\/tacmesh\//);
});
