/**
 * The node's QoS stage: takes each policy the tower pushes, applies it through the enforcer
 * (atomically; a refused policy leaves the old one in force) and reports back at once —
 * the version in force, or the version refused and why — then the per-class counters every
 * second, which the tower's closed loop reads.
 */
import type { NodeMessage, QosPolicy__Output } from '../../proto/index.js';
import { nodeLog as log } from '../../shared/log.js';
import { type EnforcerOptions, QosEnforcer } from './enforcer.js';

export const QOS_REPORT_EVERY_MS = 1000;

export class QosStage {
  private enforcer: QosEnforcer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refused = { version: 0, error: '' };

  constructor(
    private readonly send: (m: NodeMessage) => void,
    private readonly options: EnforcerOptions = {},
  ) {}

  /** Applies `policy` (a policy without links switches QoS off) and reports the outcome. */
  async apply(policy: QosPolicy__Output): Promise<void> {
    if (this.enforcer?.policy?.version === policy.version) return;
    try {
      if (policy.links.length === 0) {
        await this.enforcer?.close();
        this.enforcer = undefined;
      } else {
        this.enforcer ??= QosEnforcer.open(this.options);
        await this.enforcer.apply(policy);
        this.timer ??= setInterval(() => void this.tick(), QOS_REPORT_EVERY_MS);
      }
      log.info({ version: policy.version, rules: policy.rules.length }, 'QoS policy applied');
    } catch (err) {
      this.refused = { version: policy.version, error: (err as Error).message };
      log.error({ version: policy.version, err }, 'QoS policy refused');
    }
    await this.report();
  }

  /** Every second: put back what was removed from under the policy, then report. */
  private async tick(): Promise<void> {
    try {
      const repaired = (await this.enforcer?.repair()) ?? [];
      if (repaired.length) log.warn({ repaired }, 'QoS repaired');
    } catch (err) {
      log.warn({ err }, 'QoS repair failed');
    }
    await this.report();
  }

  private async report(): Promise<void> {
    try {
      const counters = this.enforcer
        ? await this.enforcer.counters()
        : { timeMs: Date.now(), policyVersion: 0, classes: [] };
      this.send({ qos: { ...counters, refusedVersion: this.refused.version, error: this.refused.error } });
    } catch (err) {
      log.warn({ err }, 'QoS counters not read');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.enforcer?.close();
    this.enforcer = undefined;
  }
}
