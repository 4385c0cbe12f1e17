/**
 * A real InfluxDB 1.x (Debian's influxd) for tests and benchmarks: started on 127.0.0.1 with
 * its own data directory and reporting disabled, stopped and removed afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { stopChild } from '../../src/netlab/lab.js';
import { requirePrograms } from '../../src/shared/programs.js';
import { freePort } from './free-port.js';

export interface Influxd {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startInfluxd(): Promise<Influxd> {
  const dir = mkdtempSync('/tmp/tacmesh-influx-');
  const [http, rpc] = [await freePort(), await freePort()];
  writeFileSync(
    `${dir}/influxdb.conf`,
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpc}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:${http}"
  log-enabled = false
[monitor]
  store-enabled = false
`,
  );
  requirePrograms(['influxd'], 'InfluxDB 1.x');
  const child: ChildProcess = spawn('influxd', ['-config', `${dir}/influxdb.conf`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`influxd exited (${child.exitCode}): ${err}`);
    const ok = await fetch(`${url}/ping`).then(
      (r) => r.status === 204,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`influxd did not answer on ${url} within 20 s: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid ?? 0,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
