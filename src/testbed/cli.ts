import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { cleanLeftovers } from '../netlab/lab.js';
import { deadProcesses } from '../netlab/processes.js';
import { stopVms } from '../node/agent/vm.js';
import { loadConfig } from '../shared/config.js';
import { PREFIX_PATTERN } from '../shared/name-prefix.js';
import { type TestbedConfig, testbedConfigSchema } from './config.js';
import { hqFlows } from './hq.js';
import { planTestbed } from './plan.js';
import { formatReport, scenarioReport } from './scenario/report.js';
import { runScenario, type StepDone } from './scenario/run.js';
import { ScenarioSpec } from './scenario/schema.js';
import { storyScenario } from './scenario/story.js';
import { type ScenarioWatch, watchScenario } from './scenario/watch.js';
import {
  readState,
  testbedDown,
  testbedLink,
  testbedLinkSet,
  testbedMgmt,
  testbedStatus,
  testbedUp,
} from './testbed.js';

const progress = (message: string) => process.stderr.write(`[testbed] ${message}\n`);

function percent(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 100))
    throw new InvalidArgumentError(`loss must be a percentage from 0 to 100, not "${v}"`);
  return n;
}

function positive(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError(`rate must be a positive number of Mbit/s, not "${v}"`);
  return n;
}

function wholeNumber(what: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${what} must be a whole number >= ${min}`);
    return n;
  };
}

interface UpOptions {
  config?: string;
  nodes?: number;
  apiPort?: number;
}

function configOf(opts: UpOptions, withoutHq = false): TestbedConfig {
  const base = opts.config ? loadConfig(opts.config, testbedConfigSchema) : testbedConfigSchema.parse({});
  return {
    ...base,
    ...(opts.nodes ? { nodes: opts.nodes } : {}),
    ...(opts.apiPort ? { apiPort: opts.apiPort } : {}),
    ...(withoutHq ? { hq: { ...base.hq, enabled: false } } : {}),
  };
}

function upOptions(cmd: Command): Command {
  return cmd
    .option('--nodes <n>', "WAN nodes (2-12; default 4, the paper's)", wholeNumber('nodes', 2))
    .option(
      '--config <testbed.yaml>',
      'positions, link rate and loss, extra links, request rate (docs/testbed.md)',
    )
    .option(
      '--api-port <port>',
      'the dashboard/API port on 127.0.0.1 (default 8443)',
      wholeNumber('api-port', 1),
    );
}

export function testbedCommand(): Command {
  const testbed = new Command('testbed').description(
    "The papers' experiment on this machine, in network namespaces (needs root)",
  );
  upOptions(
    testbed
      .command('up')
      .description(
        'Build the mesh: N nodes with slices, radio links, babeld, external network, tower; runs until `down`',
      ),
  )
    .option('--keep-on-failure', 'leave a testbed that failed to come up as it is, to look at its logs')
    .action(async (opts: UpOptions & { keepOnFailure?: boolean }) => {
      const state = await testbedUp(configOf(opts), progress, { keepOnFailure: opts.keepOnFailure ?? false });
      console.log(`dashboard: ${state.apiUrl}\ntoken: ${state.token}\nCA certificate: ${state.caCert}`);
    });
  testbed
    .command('down')
    .description('Stop everything the testbed started and remove every namespace and link it made')
    .option('--keep-data', 'keep the data directory (tower store, logs, certificates)')
    .action(async (opts: { keepData?: boolean }) => {
      await testbedDown(progress, undefined, opts.keepData);
    });
  testbed
    .command('status')
    .description('Processes, radio links and what the tower sees of the nodes')
    .option('--json', 'as JSON')
    .action(async (opts: { json?: boolean }) => {
      const s = await testbedStatus();
      if (!s) {
        console.log('no testbed is up');
        process.exitCode = 3;
        return;
      }
      if (opts.json) {
        console.log(JSON.stringify({ ...s, state: { ...s.state, token: undefined } }, null, 2));
        return;
      }
      console.log(
        `testbed ${s.state.prefix}, up since ${new Date(s.state.startedAt).toISOString()}, dashboard ${s.state.apiUrl}`,
      );
      console.log('radio links:');
      for (const l of s.state.plan.links) {
        const cut = s.state.cut.includes(`${l.a}-${l.b}`);
        const set = s.state.set?.[`${l.a}-${l.b}`];
        const rate = set?.rateMbit ?? s.state.config.link.rateMbit;
        const loss = set?.lossPct ?? s.state.config.link.lossPct;
        console.log(
          `  ${l.a} ${l.addrA.padEnd(18)} ${cut ? '--X--' : '-----'} ${l.b} ${l.addrB.padEnd(18)} ${cut ? 'CUT' : `${rate} Mbit/s, ${loss} % loss`}`,
        );
      }
      console.log('nodes (as the tower sees them):');
      if ('error' in s.nodes) console.log(`  tower not answering: ${s.nodes.error}`);
      else
        for (const n of s.nodes)
          console.log(
            `  ${n.name.padEnd(4)} ${n.connected ? `connected ${n.via ? `via ${n.via}` : 'directly'}` : 'DISCONNECTED'}${s.state.mgmtCut?.includes(n.name) ? ' (management link CUT)' : ''}, last seen ${new Date(n.lastSeen).toISOString()}`,
          );
      if (s.state.hq) {
        const proof = s.state.hq.proof.oneWay
          ? 'one-way (nothing from HQ reached the tower at start)'
          : 'NOT ONE-WAY';
        const held = await hqFlows(s.state.hq).catch((err: Error) => err);
        console.log(
          `headquarters: ${proof}; nfcapd holds ${held instanceof Error ? `? (${held.message})` : `${held.ends.length} flow records in ${held.files} closed files`} — nfdump -R ${s.state.hq.flowsDir}`,
        );
      }
      const dead = s.processes.filter((p) => !p.alive);
      console.log(
        `processes: ${s.processes.length - dead.length} of ${s.processes.length} alive${dead.length ? ` — dead: ${dead.map((p) => p.name).join(', ')}` : ''}`,
      );
      if (dead.length) process.exitCode = 2;
    });
  testbed
    .command('link')
    .description(
      'Cut a radio link between two nodes (nothing passes either way), restore it, or set its loss and rate live',
    )
    .argument('<action>', 'cut, restore or set')
    .argument('<a>', 'a node, e.g. n1')
    .argument('<b>', 'the other node, e.g. n2')
    .option('--loss <pct>', 'with set: random loss on the link, percent each way', percent)
    .option('--rate <mbit>', "with set: the radio's rate in Mbit/s (at most the configured one)", positive)
    .action(async (action: string, a: string, b: string, opts: { loss?: number; rate?: number }) => {
      if (action === 'set') {
        if (opts.loss === undefined && opts.rate === undefined)
          throw new InvalidArgumentError('link set needs --loss and/or --rate');
        const { link, setting } = await testbedLinkSet(a, b, {
          ...(opts.loss !== undefined ? { lossPct: opts.loss } : {}),
          ...(opts.rate !== undefined ? { rateMbit: opts.rate } : {}),
        });
        console.log(
          `set ${link.a}-${link.b}: ${setting.rateMbit} Mbit/s, ${setting.lossPct} % loss${setting.cut ? ' (cut: takes effect on restore)' : ''}`,
        );
        return;
      }
      if (action !== 'cut' && action !== 'restore')
        throw new InvalidArgumentError(`action must be cut, restore or set, not "${action}"`);
      const link = testbedLink(action, a, b);
      console.log(`${action === 'cut' ? 'cut' : 'restored'} ${link.a}-${link.b}`);
    });
  testbed
    .command('mgmt')
    .description(
      "Cut a node's management link to the tower, or restore it; its telemetry goes through a neighbour meanwhile",
    )
    .argument('<action>', 'cut or restore')
    .argument('<node>', 'a node, e.g. n2')
    .action((action: string, node: string) => {
      if (action !== 'cut' && action !== 'restore')
        throw new InvalidArgumentError(`action must be cut or restore, not "${action}"`);
      testbedMgmt(action, node);
      console.log(`${action === 'cut' ? 'cut' : 'restored'} the management link of ${node}`);
    });
  testbed
    .command('clean')
    .description(
      'Remove namespaces, links and processes that earlier tacmesh runs left behind (names tm?????*)',
    )
    .option('--prefix <tm?????>', "only one run's leftovers (its 7-character prefix)")
    .action(async (opts: { prefix?: string }) => {
      if (opts.prefix && !/^tm[0-9a-z]{5}$/.test(opts.prefix)) {
        throw new InvalidArgumentError(
          `prefix must be tm and 5 lowercase letters or digits, not "${opts.prefix}"`,
        );
      }
      const pattern = opts.prefix ? new RegExp(`^${opts.prefix}`) : PREFIX_PATTERN;
      const vms = await stopVms(pattern);
      const report = await cleanLeftovers(pattern);
      console.log(
        `removed ${vms.length} VMs, ${report.namespaces.length} namespaces, ${report.links.length} links, ${report.processes} processes`,
      );
      for (const v of vms) console.log(`  vm ${v}`);
      for (const n of report.namespaces) console.log(`  netns ${n}`);
      for (const link of report.links) console.log(`  link ${link}`);
    });
  return testbed;
}

/** The scenario `--scenario` names: the story, none, or a file (checked before anything is made). */
function scenarioOf(arg: string, config: TestbedConfig): ScenarioSpec | undefined {
  if (arg === 'none') return undefined;
  if (arg === 'story') return storyScenario(planTestbed(config));
  return loadConfig(arg, ScenarioSpec);
}

export function demoCommand(): Command {
  return upOptions(
    new Command('demo').description(
      "The main job: the paper's 4-node mesh with slices, radio links, routing and the services' traffic (C2, a sensor stream, web, bulk) under a QoS policy, watched from the tower's dashboard while a story of degraded and cut links plays; Ctrl-C ends it with a report and removes everything (needs root)",
    ),
  )
    .option(
      '--duration <s>',
      'stop after this many seconds (default: when the scenario ends, else at Ctrl-C)',
      wholeNumber('duration', 1),
    )
    .option(
      '--scenario <story|none|file.yaml>',
      'timed steps on the links (docs/testbed.md): the default story, none, or a scenario file',
      'story',
    )
    .option('--no-hq', 'without headquarters behind the diode (hq in testbed.yaml)')
    .action(async (opts: UpOptions & { duration?: number; hq?: boolean; scenario: string }) => {
      const config = configOf(opts, opts.hq === false);
      const scenario = scenarioOf(opts.scenario, config);
      const state = await testbedUp(config, progress);
      let stopping = false;
      let deaths: NodeJS.Timeout | undefined;
      const story = new AbortController();
      let playing: Promise<StepDone[]> | undefined;
      let watch: ScenarioWatch | undefined;
      const startMs = Date.now();
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        clearInterval(deaths);
        story.abort();
        if (playing && watch) {
          await playing.catch(() => undefined);
          // What the tower saw, before the testbed goes: a couple of export intervals for the last records.
          await new Promise((r) => setTimeout(r, 3000));
          await watch.stop();
          const report = await scenarioReport(state, startMs, Date.now(), watch).catch((err: Error) => err);
          console.log(
            report instanceof Error ? `no report: ${report.message}` : `\n${formatReport(report)}\n`,
          );
        }
        progress('stopping: taking the testbed down');
        await testbedDown(progress, readState() ?? state);
        progress('done: nothing of the demo is left');
        process.exit(0);
      };
      process.on('SIGINT', () => void stop());
      process.on('SIGTERM', () => void stop());
      // A process of the demo that dies is said at once, each once (traffic turned off is no longer listed).
      const reported = new Set<string>();
      deaths = setInterval(() => {
        if (stopping) return;
        for (const dead of deadProcesses((readState() ?? state).pids, join(state.dir, 'logs'))) {
          if (reported.has(dead.name)) continue;
          reported.add(dead.name);
          progress(`warning: ${dead.message}`);
        }
      }, 2000).unref();
      console.log(
        [
          '',
          `  Dashboard:  ${state.apiUrl}`,
          `  Login token: ${state.token}`,
          `  The dashboard's certificate comes from the testbed's own CA (${state.caCert}); your browser will ask you to accept it.`,
          '',
          '  Services: c2 (flash, between all nodes), sensor (immediate, UDP streams), web (routine), bulk (a transfer across n1-n2)',
          '  under a QoS policy with the closed loop on: the QoS and Services pages show them.',
          '',
          ...(state.hq
            ? [
                `  Headquarters: the tower's flow records cross a one-way link (shown one-way at start) to nfcapd:`,
                `        nfdump -R ${state.hq.flowsDir} | tail     (the dashboard's Nodes page shows the link as its sender knows it)`,
                '',
              ]
            : []),
          scenario
            ? `  Scenario ${scenario.name}: ${scenario.steps.length} steps; each is printed here and marked on the Overview's time axis with the tower's answer.`
            : '  No scenario. Try:  tacmesh testbed link cut n1 n2 | link set n1 n2 --rate 4 --loss 2 | mgmt cut n2 | status',
          '',
          opts.duration
            ? `  Running for ${opts.duration} s.`
            : scenario?.end !== undefined
              ? `  Ends with a report at t+${scenario.end} s; Ctrl-C ends it sooner (with the report) and removes everything.`
              : '  Ctrl-C stops the demo and removes everything.',
          '',
        ].join('\n'),
      );
      if (scenario) {
        watch = await watchScenario(state);
        playing = runScenario(
          state,
          scenario,
          (line) => console.log(`[story] ${line}`),
          story.signal,
          startMs,
        );
        playing.then(
          () => {
            if (scenario.end !== undefined && !opts.duration) void stop();
          },
          (err: Error) => progress(`scenario stopped: ${err.message}`),
        );
      }
      if (opts.duration) setTimeout(() => void stop(), opts.duration * 1000);
      await new Promise(() => undefined);
    });
}
