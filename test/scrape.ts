/** Prometheus scrapes in tests: GET /metrics and the samples by name and labels. */
import { request } from 'node:http';

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
