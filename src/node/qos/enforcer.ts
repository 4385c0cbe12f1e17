/**
 * Enforces a QoS policy on a node's egress links: loads bpf/qos.bpf.c, attaches it to every
 * link, builds the HTB classes and applies each new policy atomically: the inactive
 * generation of the tables is filled and the classes added or re-rated, then one write to
 * qos_config switches every packet to the new policy; only then are classes the new policy
 * no longer has removed. A policy that fails to compile or whose classes tc refuses leaves
 * the old one in force (its classes are put back).
 */
import { type Attachment, attach, BpfObject, ifindexOf, type TypedMap } from '../../bpf/index.js';
import {
  QOS_MAX_CLASSES,
  QOS_MAX_RULES,
  type QosConfig,
  type QosCountersEntry,
  type QosLpmKey,
  type QosRuleEntry,
  type QosRuleset,
  qosBucket,
  qosConfig,
  qosCounters,
  qosLpmKey,
  qosRule,
  qosRuleset,
  u32Key,
} from '../../bpf/types.js';
import { type BpfTrust, withVerifiedObject } from '../../pki/bpf-manifest.js';
import type { QosClassCounters, QosCounters, QosPolicy__Output } from '../../proto/index.js';
import { run } from '../../shared/exec.js';
import { parseHtbClasses } from '../agent/isolation.js';
import { type CompiledClass, type CompiledPolicy, compilePolicy } from './compile.js';
import {
  classCommands,
  defaultClassCommands,
  deleteClassCommand,
  parseClassStats,
  type QosLinkSpec,
  rootCommands,
} from './htb.js';

export interface EnforcerOptions {
  /** Network namespace of the links (tests); default the current one. */
  netns?: string;
  /** qos.bpf.o is loaded only as the signed manifest lists it; without one, QoS is refused. */
  bpf?: BpfTrust;
}

interface Generation {
  policy: QosPolicy__Output;
  compiled: CompiledPolicy;
  lpmKeys: { side: 'src' | 'dst'; key: QosLpmKey }[];
}

export class QosEnforcer {
  private readonly config: TypedMap<number, QosConfig>;
  private readonly src: TypedMap<QosLpmKey, QosRuleset>;
  private readonly dst: TypedMap<QosLpmKey, QosRuleset>;
  private readonly rules: TypedMap<number, QosRuleEntry>;
  private readonly ruleCounters: TypedMap<number, QosCountersEntry>;
  private readonly classCounters: TypedMap<number, QosCountersEntry>;
  private readonly attachments = new Map<string, Attachment>();
  /** Links whose HTB root this enforcer created (it also keeps their 1:1 and 1:ffff). */
  private readonly ownRoots = new Set<string>();
  private readonly links = new Map<string, QosLinkSpec>();
  private gens: [Generation | undefined, Generation | undefined] = [undefined, undefined];
  private active = 0;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly obj: BpfObject,
    private readonly options: EnforcerOptions,
  ) {
    this.config = obj.map('qos_config').typed(u32Key, qosConfig);
    this.src = obj.map('qos_src').typed(qosLpmKey, qosRuleset);
    this.dst = obj.map('qos_dst').typed(qosLpmKey, qosRuleset);
    this.rules = obj.map('qos_rules').typed(u32Key, qosRule);
    this.ruleCounters = obj.map('qos_rule_counters').typed(u32Key, qosCounters);
    this.classCounters = obj.map('qos_class_counters').typed(u32Key, qosCounters);
  }

  static open(options: EnforcerOptions = {}): QosEnforcer {
    if (!options.bpf) {
      throw new Error(
        'QoS needs a signed eBPF manifest (bpf.manifest and bpf.trustedKeys): the node loads only signed objects',
      );
    }
    const obj = withVerifiedObject('qos', options.bpf, (path) => BpfObject.load(path));
    const e = new QosEnforcer(obj, options);
    e.config.update(0, { active: 0, enabled: 0 });
    return e;
  }

  /** The policy in force, or undefined. */
  get policy(): QosPolicy__Output | undefined {
    return this.gens[this.active]?.policy;
  }

  private tc(args: string[]) {
    return run('tc', this.options.netns ? ['-n', this.options.netns, ...args] : args);
  }

  /** Applies `policy`, one apply at a time; rejects (old policy in force) when it cannot. */
  apply(policy: QosPolicy__Output): Promise<void> {
    const next = this.queue.then(() => this.applyNow(policy));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async applyNow(policy: QosPolicy__Output): Promise<void> {
    const compiled = compilePolicy(policy, (iface) => ifindexOf(iface, this.options.netns));
    const old = this.gens[this.active];
    const links = policy.links.map((l) => ({
      iface: l.iface,
      rateBps: l.rateBps,
      limits: new Map(l.limits.map((x) => [x.class, x.ceilingBps])),
    }));
    if (links.length === 0) throw new Error('the policy names no link to enforce it on');
    for (const l of links) ifindexOf(l.iface, this.options.netns); // an unknown link fails here, before any change
    try {
      await this.buildClasses(links, compiled.classes);
    } catch (err) {
      if (old) await this.buildClasses([...this.links.values()], old.compiled.classes).catch(() => undefined);
      throw err;
    }
    const gen = this.active ^ 1;
    this.fill(gen, policy, compiled);
    for (const l of links) this.attachTo(l.iface);
    this.config.update(0, { active: gen, enabled: 1 });
    this.active = gen;
    // Classes the new policy no longer has, on links it still has; links it dropped lose all.
    const keep = new Set(compiled.classes.map((c) => c.classid));
    for (const l of this.links.values()) {
      const dropped = !links.some((x) => x.iface === l.iface);
      for (const c of old?.compiled.classes ?? []) {
        if (dropped || !keep.has(c.classid))
          await this.tc(deleteClassCommand(l.iface, c.classid)).catch(() => undefined);
      }
      if (dropped) this.detachFrom(l.iface);
    }
    this.links.clear();
    for (const l of links) this.links.set(l.iface, l);
  }

  /**
   * Puts back what someone else removed: classes of the policy in force missing from a link
   * (an HTB root replaced, a class deleted) are rebuilt, and a link re-created under the same
   * name gets the program again. Returns what was found; empty when all was in place.
   */
  repair(): Promise<string[]> {
    const next = this.queue.then(() => this.repairNow());
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async repairNow(): Promise<string[]> {
    const gen = this.gens[this.active];
    if (!gen) return [];
    const problems: string[] = [];
    let rebuild = false;
    for (const link of this.links.values()) {
      let index: number;
      try {
        index = ifindexOf(link.iface, this.options.netns);
      } catch {
        problems.push(`link ${link.iface} is gone`);
        continue;
      }
      if (this.attachments.get(link.iface)?.ifindex !== index) {
        this.detachFrom(link.iface);
        this.attachTo(link.iface);
        problems.push(`link ${link.iface} was re-created: program attached again`);
      }
      const have = parseHtbClasses((await this.tc(['class', 'show', 'dev', link.iface])).stdout);
      const missing = gen.compiled.classes.filter((c) => !have.has(c.classid)).map((c) => c.name);
      if (missing.length) {
        problems.push(`classes ${missing.join(', ')} missing on ${link.iface}: rebuilt`);
        rebuild = true;
      }
    }
    if (rebuild) await this.buildClasses([...this.links.values()], gen.compiled.classes);
    return problems;
  }

  private async buildClasses(links: QosLinkSpec[], classes: CompiledClass[]): Promise<void> {
    const guaranteed = classes.reduce((s, c) => s + c.guaranteedBps, 0);
    for (const link of links) {
      const { stdout } = await this.tc(['-j', 'qdisc', 'show', 'dev', link.iface, 'root']);
      const root = (JSON.parse(stdout || '[]') as { kind: string; handle: string }[])[0];
      const htbRoot = root?.kind === 'htb' && root.handle === '1:';
      if (!htbRoot) {
        for (const cmd of rootCommands(link, guaranteed)) await this.tc(cmd);
        this.ownRoots.add(link.iface);
      } else if (this.ownRoots.has(link.iface)) {
        for (const cmd of defaultClassCommands(link, guaranteed)) await this.tc(cmd);
      }
      for (const cmd of classCommands(link, classes)) await this.tc(cmd);
    }
  }

  /** Writes generation `gen` (not in force): removes what it held, then the new entries. */
  private fill(gen: number, policy: QosPolicy__Output, compiled: CompiledPolicy): void {
    for (const { side, key } of this.gens[gen]?.lpmKeys ?? [])
      (side === 'src' ? this.src : this.dst).delete(key);
    const lpmKeys: Generation['lpmKeys'] = [];
    for (const side of ['src', 'dst'] as const) {
      for (const { prefix, bits } of compiled[side]) {
        const key = { prefixlen: 8 + prefix.len, gen, addr: prefix.addr };
        (side === 'src' ? this.src : this.dst).update(key, { bits });
        lpmKeys.push({ side, key });
      }
    }
    const zero = { packets: 0n, bytes: 0n, drops: 0n, remarks: 0n };
    const buckets = this.obj.map('qos_buckets');
    const previous = this.gens[gen]?.compiled.rules.length ?? 0;
    for (let i = 0; i < Math.max(previous, compiled.rules.length); i++) {
      const idx = gen * QOS_MAX_RULES + i;
      const rule = compiled.rules[i];
      if (rule) this.rules.update(idx, rule);
      this.ruleCounters.update(idx, zero);
      const k = Buffer.alloc(4);
      k.writeUInt32LE(idx);
      // a policer starts with a full bucket: its burst passes at once
      const bucket = Buffer.alloc(qosBucket.size);
      bucket.writeBigUInt64LE(rule?.policeBurst ?? 0n, qosBucket.offset.tokens);
      buckets.update(k, bucket);
    }
    for (let c = 0; c < QOS_MAX_CLASSES; c++) this.classCounters.update(gen * QOS_MAX_CLASSES + c, zero);
    this.gens[gen] = { policy, compiled, lpmKeys };
  }

  private attachTo(iface: string): void {
    if (this.attachments.has(iface)) return;
    const a = attach(this.obj.program('qos_egress'), iface, 'egress', {
      ...(this.options.netns ? { netns: this.options.netns } : {}),
    });
    this.attachments.set(iface, a);
  }

  private detachFrom(iface: string): void {
    this.attachments.get(iface)?.detach();
    this.attachments.delete(iface);
  }

  /** Runs the program on one packet `repeat` times (BPF_PROG_TEST_RUN): its cost per packet. */
  testRun(packet: Buffer, repeat: number): { retval: number; nsPerRun: number } {
    return this.obj.program('qos_egress').testRun(packet, repeat);
  }

  /** Per-rule counters of the policy in force (summed over CPUs), by rule name. */
  ruleCounts(): Map<string, QosCountersEntry> {
    const gen = this.gens[this.active];
    const out = new Map<string, QosCountersEntry>();
    gen?.compiled.ruleNames.forEach((name, i) => {
      out.set(name, sum(this.ruleCounters.lookupAll(this.active * QOS_MAX_RULES + i) ?? []));
    });
    return out;
  }

  /**
   * Per link and class: what HTB sent and dropped (queue overflow) plus the program's policer
   * drops and re-marks; class '*' is the whole link (1:1), its utilisation.
   */
  async counters(): Promise<QosCounters & { classes: QosClassCounters[] }> {
    const gen = this.gens[this.active];
    const classes: QosClassCounters[] = [];
    if (gen) {
      const program = gen.compiled.classes.map((c) =>
        sum(this.classCounters.lookupAll(this.active * QOS_MAX_CLASSES + c.index) ?? []),
      );
      for (const link of this.links.values()) {
        const { stdout } = await this.tc(['-s', 'class', 'show', 'dev', link.iface]);
        const stats = new Map(parseClassStats(stdout).map((s) => [s.classid, s]));
        const whole = stats.get('1:1');
        classes.push({
          iface: link.iface,
          class: '*',
          packets: whole?.packets ?? 0,
          bytes: whole?.bytes ?? 0,
          drops: whole?.drops ?? 0,
        });
        for (const c of gen.compiled.classes) {
          const s = stats.get(c.classid);
          const p = program[c.index]!;
          classes.push({
            iface: link.iface,
            class: c.name,
            packets: s?.packets ?? 0,
            bytes: s?.bytes ?? 0,
            drops: (s?.drops ?? 0) + Number(p.drops),
            remarks: Number(p.remarks),
          });
        }
      }
    }
    return { timeMs: Date.now(), policyVersion: gen?.policy.version ?? 0, classes };
  }

  /** Detaches the program and removes the classes (and the roots it created). */
  async close(): Promise<void> {
    await this.queue;
    for (const iface of [...this.attachments.keys()]) this.detachFrom(iface);
    const gen = this.gens[this.active];
    for (const l of this.links.values()) {
      if (this.ownRoots.has(l.iface)) {
        await this.tc(['qdisc', 'del', 'dev', l.iface, 'root']).catch(() => undefined);
        continue;
      }
      for (const c of gen?.compiled.classes ?? [])
        await this.tc(deleteClassCommand(l.iface, c.classid)).catch(() => undefined);
    }
    this.obj.close();
  }
}

function sum(list: QosCountersEntry[]): QosCountersEntry {
  const t = { packets: 0n, bytes: 0n, drops: 0n, remarks: 0n };
  for (const c of list) {
    t.packets += c.packets;
    t.bytes += c.bytes;
    t.drops += c.drops;
    t.remarks += c.remarks;
  }
  return t;
}
