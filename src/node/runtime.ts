/**
 * `tacmesh node run`: the node process. The monitor stage feeds the tower link; the
 * tower's monitoring settings are applied live through the monitor's maps; the node's
 * status (interfaces, applied settings) is reported every few seconds.
 */
import { hostname } from 'node:os';
import type { MonitorConfig__Output } from '../proto/index.js';
import { log } from '../shared/log.js';
import { SeqAllocator } from './export/seq.js';
import { type HelloInfo, TowerLink, type TowerLinkOptions } from './export/tower-client.js';
import { Monitor } from './monitor/monitor.js';

export interface NodeRuntimeOptions {
  name?: string;
  interfaces: string[];
  netns?: string;
  stateDir: string;
  tower: Omit<TowerLinkOptions, 'node' | 'hello' | 'onMonitorConfig'>;
  hello: HelloInfo;
  intervalMs?: number;
}

const STATUS_EVERY_MS = 5000;

export class NodeRuntime {
  private monitor: Monitor | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private appliedVersion = 0;
  readonly link: TowerLink;
  readonly name: string;

  constructor(private readonly options: NodeRuntimeOptions) {
    this.name = options.name ?? hostname();
    this.link = new TowerLink(
      {
        ...options.tower,
        node: this.name,
        hello: () => options.hello,
        onMonitorConfig: (c) => this.applyMonitorConfig(c),
      },
      new SeqAllocator(options.stateDir),
    );
  }

  async start(): Promise<void> {
    this.monitor = await Monitor.start(this.link, {
      interfaces: this.options.interfaces,
      node: this.name,
      intervalMs: this.options.intervalMs ?? 1000,
      ...(this.options.netns ? { netns: this.options.netns } : {}),
    });
    await this.link.start();
    this.statusTimer = setInterval(() => this.reportStatus(), STATUS_EVERY_MS);
    log.info({ node: this.name, interfaces: this.monitor.flowmon.interfaces }, 'node running');
  }

  /** Settings from the tower take effect on the next packet; the version is reported back. */
  private applyMonitorConfig(c: MonitorConfig__Output): void {
    if (!this.monitor || c.version === this.appliedVersion) return;
    const applied = this.monitor.configure({ l3: c.l3, l4: c.l4, l7: c.l7, sample: Math.max(1, c.sample) });
    if (c.intervalMs > 0) this.monitor.setInterval(c.intervalMs);
    this.appliedVersion = c.version;
    log.info({ version: c.version, ...applied, intervalMs: c.intervalMs }, 'monitoring settings applied');
    this.reportStatus();
  }

  private reportStatus(): void {
    if (!this.monitor) return;
    const settings = this.monitor.flowmon.settings();
    this.link.sendNow({
      status: {
        timeMs: Date.now(),
        interfaces: this.monitor.flowmon.interfaces.map((name) => ({ name, up: true, monitored: true })),
        slices: this.options.hello.slices,
        health: 'ok',
        monitorConfig: { ...settings, intervalMs: this.monitor.intervalMs, version: this.appliedVersion },
      },
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.statusTimer);
    this.monitor?.stop();
    await this.link.stop();
  }
}
