/**
 * `tacmesh diode demo` (and `demo down`): the demo in the foreground, with a live screen of
 * both ends, keys that change the link, the scenario, and a report at the end. The network
 * code is loaded only when the command runs.
 */
import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';

function number(what: string, min: number, max: number, whole = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n >= min && n <= max) || (whole && !Number.isInteger(n)))
      throw new InvalidArgumentError(
        `${what} must be ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}`,
      );
    return n;
  };
}

export interface DemoCliOptions {
  rate: number;
  loss: number;
  burst: number;
  fecLoss?: number;
  scenario?: boolean;
  duration?: number;
  report?: string;
  plain?: boolean;
}

const RATES = [1, 2, 5, 10, 20, 50, 100, 200, 500];
const LOSSES = [0, 0.1, 0.5, 1, 2, 5, 10, 20];
const BURSTS = [1, 2, 4, 8, 16, 32];

/** The next step of `steps` above (up) or below `now`. */
export function step(steps: number[], now: number, up: boolean): number {
  return up ? (steps.find((s) => s > now) ?? now) : ([...steps].reverse().find((s) => s < now) ?? now);
}

const progress = (m: string) => process.stderr.write(`[diode demo] ${m}\n`);

async function runDemo(opts: DemoCliOptions): Promise<void> {
  const { DiodeDemo } = await import('./demo.js');
  const { DemoWatch } = await import('./watch.js');
  const { changes, COLOURS, PLAIN, render } = await import('./screen.js');
  const { demoReport, reportText } = await import('./report.js');
  const { playScenario, SCENARIO_BURST, SCENARIO_LOSS_PCT } = await import('./scenario.js');
  const { deadProcesses } = await import('../../netlab/processes.js');
  const fecLoss = opts.fecLoss ?? (opts.scenario ? Math.max(SCENARIO_LOSS_PCT, opts.loss) : undefined);
  const demo = await DiodeDemo.up(
    {
      link: { rateMbit: opts.rate, lossPct: opts.loss, burst: opts.burst },
      ...(fecLoss !== undefined
        ? {
            fec: {
              lossPct: fecLoss,
              burst: opts.scenario ? Math.max(SCENARIO_BURST, opts.burst) : opts.burst,
            },
          }
        : {}),
    },
    progress,
  );
  const watch = new DemoWatch(() => demo.state);
  const tty = !!process.stdout.isTTY && !opts.plain;
  const paint = tty ? COLOURS : PLAIN;
  const events: string[] = [];
  const event = (text: string) => {
    const line = `${new Date().toISOString().slice(11, 19)}  ${text}`;
    events.push(line);
    if (events.length > 50) events.shift();
    if (!tty) process.stdout.write(`${line}\n`);
  };
  let scenario: string | undefined;
  let previous: ReturnType<typeof watch.snapshot> | undefined;
  const reported = new Set<string>();
  let lastPlain = 0;
  const snapshot = () => watch.snapshot(demo.linkCounters());
  const draw = () => {
    for (const dead of deadProcesses(demo.state.pids, demo.state.paths.logs)) {
      if (reported.has(dead.name)) continue;
      reported.add(dead.name);
      event(`warning: ${dead.message.split('\n')[0]} (log: ${demo.state.paths.logs}/${dead.name}.log)`);
    }
    const snap = snapshot();
    for (const c of changes(previous, snap)) event(c);
    previous = snap;
    if (tty) {
      const lines = render(
        demo.state,
        snap,
        { events, keys: !opts.scenario, ...(scenario ? { scenario } : {}) },
        paint,
      );
      process.stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`);
    } else if (Date.now() - lastPlain >= 5000) {
      lastPlain = Date.now();
      const r = snap.receiver;
      const done = snap.files.filter((f) => f.state === 'complete').length;
      process.stdout.write(
        `link ${snap.link.set.rateMbit} Mbit/s ${snap.link.set.lossPct} % loss (bursts ${snap.link.set.burst}) | receiver ${r?.alive ? 'UP' : 'DOWN'} ${(r?.rateMbit ?? 0).toFixed(1)} Mbit/s, loss ${r?.lossRecent === null || r?.lossRecent === undefined ? '-' : (r.lossRecent * 100).toFixed(2)} %, FEC ${r?.fec.repaired ?? 0} repaired ${r?.fec.failed ?? 0} failed, ${r?.heartbeats ?? 0} heartbeats | files ${done}/${snap.files.length} complete | syslog ${snap.tcp.linesDelivered}/${snap.tcp.linesSent} lines | udp ${snap.udp.delivered}/${snap.udp.sent}\n`,
      );
    }
  };

  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  const stop = async (code?: number) => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    if (tty) {
      process.stdin.setRawMode?.(false);
      process.stdout.write('\x1b[?25h\x1b[?1049l');
    }
    progress('the report: the traffic sources stop, what they sent lands');
    await demo.stopSources();
    watch.snapshot(demo.linkCounters());
    await watch.settled();
    const report = demoReport(demo.state, watch.snapshot(demo.linkCounters()));
    process.stdout.write(`${reportText(report)}\n`);
    if (opts.report) writeFileSync(opts.report, `${JSON.stringify(report, null, 2)}\n`);
    progress('stopping: taking the demo down');
    await demo.down(progress);
    progress('done: nothing of the demo is left');
    process.exit(code ?? (report.ok ? 0 : 1));
  };
  // A closed terminal (SIGHUP) ends the demo as Ctrl-C does: nothing is left behind.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop());

  const { paths } = demo.state;
  process.stdout.write(
    [
      '',
      `  Outbox: ${paths.outbox}   (drop files here: write .name, then rename to name)`,
      `  Inbox:  ${paths.inbox}`,
      `  Status: tacmesh diode status -c ${paths.recvConfig}   (and -c ${paths.sendConfig})`,
      '',
    ].join('\n'),
  );
  if (tty) {
    process.stdout.write('\x1b[?1049h\x1b[?25l');
    process.stdin.setRawMode?.(true);
    process.stdin.resume();
    process.stdin.on('data', (key: Buffer) => void onKey(key.toString()));
  }
  let samples = 0;
  const onKey = async (key: string) => {
    if (key === 'q' || key === '\x03') return stop();
    if (opts.scenario) return;
    const l = demo.state.link;
    try {
      if (key === 'r' || key === 'R') {
        const next = await demo.setLink({ rateMbit: step(RATES, l.rateMbit, key === 'R') });
        event(`link: rate ${next.rateMbit} Mbit/s (the sender's pace follows)`);
      } else if (key === 'l' || key === 'L') {
        const next = await demo.setLink({ lossPct: step(LOSSES, l.lossPct, key === 'L') });
        event(`link: loss ${next.lossPct} %`);
      } else if (key === 'b' || key === 'B') {
        const next = await demo.setLink({ burst: step(BURSTS, l.burst, key === 'B') });
        event(`link: losses in bursts of ${next.burst}`);
      } else if (key === 'f') {
        const name = `sample-${++samples}.bin`;
        demo.drop(name, 4_000_000);
        event(`${name}: 4 MB dropped into the outbox`);
      } else if (key === 'k') {
        await demo.killReceiver();
        event('receiver: killed with SIGKILL; restarting in 3 s');
        setTimeout(() => {
          demo.startDiode('recv').then(
            () => event('receiver: restarted'),
            (err: Error) => event(`receiver: restart failed: ${err.message}`),
          );
        }, 3000);
      }
    } catch (err) {
      event(`error: ${(err as Error).message}`);
    }
  };
  timer = setInterval(draw, 500);
  draw();
  if (opts.duration) setTimeout(() => void stop(), opts.duration * 1000);
  if (opts.scenario) {
    await playScenario(demo, {
      say: (s) => {
        scenario = s;
        event(`scenario ${s}`);
      },
      event,
      snapshot,
    });
    await stop();
  }
  await new Promise(() => undefined);
}

export function diodeDemoCommand(): Command {
  const demo = new Command('demo')
    .description(
      'The diode, tried in one command (needs root): a sending and a receiving side in network namespaces, ' +
        'joined by a strictly one-way link shown to carry nothing back; keys, auth, FEC sized for the loss; ' +
        'an outbox whose files appear in the inbox, checked; a TCP log stream and a UDP stream across; both ends live',
    )
    .option(
      '--rate <mbit>',
      'the link rate in Mbit/s (keys r/R while it runs)',
      number('rate', 1, 10_000),
      20,
    )
    .option('--loss <percent>', 'random loss on the link, % (keys l/L)', number('loss', 0, 50), 0)
    .option(
      '--burst <packets>',
      'losses come this many in a row (keys b/B)',
      number('burst', 1, 1000, true),
      1,
    )
    .option(
      '--fec-loss <percent>',
      'the loss FEC is sized for (default: --loss, at least 1 %; 5 % with --scenario)',
      number('fec-loss', 0, 50),
    )
    .option(
      '--scenario',
      'play a short story — a clean link, 5 % loss in bursts, a kill -9 of the receiver and its restart — then report and exit (0: every file bit-identical or reported incomplete)',
    )
    .option(
      '--duration <s>',
      'stop after this many seconds (default: q or Ctrl-C)',
      number('duration', 1, 86_400, true),
    )
    .option('--report <file>', 'also write the closing report as JSON')
    .option(
      '--plain',
      'no live screen: events, and a status line every 5 s (the default when stdout is not a terminal)',
    )
    .addHelpText(
      'after',
      `
Keys while it runs: r/R link rate down/up, l/L loss, b/B burst length, f drop a 4 MB sample
file into the outbox, k kill -9 the receiver (restarted 3 s later), q quit.
What each number on the screen means: docs/diode.md ("Try it"). At the end a report says
what became of every file; Ctrl-C, q or \`tacmesh diode demo down\` (from another terminal)
removes the namespaces, processes and files of the demo.`,
    )
    .action((opts: DemoCliOptions) => runDemo(opts));
  demo
    .command('down')
    .description('end a running diode demo and remove everything it made (also after a crash)')
    .action(async () => {
      const { demoDown } = await import('./demo.js');
      await demoDown(progress);
    });
  return demo;
}
