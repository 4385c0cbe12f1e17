import type { Lab } from '../../src/netlab/lab.js';

/** Starts `iperf3 -s` on `port` in `netns` and resolves once it listens. */
export async function iperfServer(lab: Lab, netns: string, port: number): Promise<void> {
  lab.spawn(netns, 'iperf3', ['-s', '-p', String(port)]);
  for (let i = 0; i < 100; i++) {
    const { stdout } = await lab.exec(netns, 'ss', ['-Hltn', `sport = :${port}`]);
    if (stdout.trim()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`iperf3 server on port ${port} did not start`);
}
