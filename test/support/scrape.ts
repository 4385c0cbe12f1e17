/** Prometheus scrapes in tests: GET /metrics and the samples by name and labels. */
import { request } from 'node:http';
import type { Lab } from '../../src/netlab/lab.js';

export async function scrape(host: string, port: number): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    request({ host, port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`)),
      );
    })
      .on('error', reject)
      .end();
  });
  return parseMetrics(text);
}

/** GET /metrics from inside a network namespace (where the host has no route to). */
export async function scrapeIn(lab: Lab, netns: string, port: number): Promise<Map<string, number>> {
  const fetcher = `fetch('http://127.0.0.1:${port}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const { stdout } = await lab.exec(netns, process.execPath, ['-e', fetcher]);
  return parseMetrics(stdout);
}

/** The exposition text's samples: `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The value of the sample whose name (with labels) starts with `prefix`; throws if absent. */
export function sample(samples: Map<string, number>, prefix: string): number {
  for (const [k, v] of samples) if (k === prefix || k.startsWith(`${prefix}{`)) return v;
  throw new Error(`no sample ${prefix} in ${[...samples.keys()].join(', ')}`);
}
