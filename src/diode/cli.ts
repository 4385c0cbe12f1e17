/** `tacmesh diode`: the RED sender and receiver, files, status, keys, and the paper's model. */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, parseConfig, recvSchema, type SendConfig, sendSchema } from './config.js';
import { diodeDemoCommand } from './demo/cli.js';
import { SpoolFullError } from './disk.js';
import { type MeasuredRun, measuredReport, modelReport } from './paper-model.js';
import { generateKey, readKeyFile } from './protocol/auth.js';
import { describeSizing } from './protocol/fec-sizing.js';
import type { Manifest } from './protocol/file-frames.js';
import { Receiver } from './receive/receiver.js';
import { maxPayloadFor } from './send/aggregator.js';
import { calibrate } from './send/calibrate.js';
import type { FileProgress } from './send/files.js';
import { Sender } from './send/sender.js';
import { FileSpool } from './send/spool.js';
import { progressLine, readStats, receiverStatus, senderStatus } from './status.js';

/**
 * Runs until SIGTERM/SIGINT, then stops and prints the final counters as one JSON line;
 * SIGHUP runs `reload`.
 */
async function serve(
  part: {
    start(): Promise<void>;
    stop(): Promise<void> | void;
    stats(): unknown;
  },
  reload: () => void,
) {
  await part.start();
  process.on('SIGHUP', reload);
  console.log('ready');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await part.stop();
  console.log(JSON.stringify(part.stats()));
  process.exit(0);
}

export function diodeCommand(): Command {
  const diode = new Command('diode').description(
    'RED, the reliable data diode: TCP and UDP across a strictly one-way UDP link (no ACK, no handshake, nothing back)',
  );
  diode
    .command('send')
    .description(
      'the RED transmission system: accept TCP sessions and capture UDP per configured service, and send them ' +
        'over the one-way link with copies by importance, paced at the link rate, heartbeats once a second',
    )
    .requiredOption('-c, --config <file>', 'send.yaml (see docs/diode.md and examples/diode/send.yaml)')
    .addHelpText(
      'after',
      '\nPrints "ready" once listening; on SIGTERM/SIGINT sends what is queued and prints its counters as JSON; ' +
        'on SIGHUP re-reads the key file and link.rateMbit.',
    )
    .action(async (opts: { config: string }) => {
      const read = () => loadConfig(opts.config, sendSchema);
      const sender = new Sender(read());
      return serve(sender, () => sender.reload(read));
    });
  diode
    .command('recv')
    .description(
      'the RED reception system: collect frames from the one-way link, drop duplicates, deliver TCP sessions ' +
        'in order to their destinations (or reset them when data is missing) and UDP datagrams',
    )
    .requiredOption('-c, --config <file>', 'recv.yaml (see docs/diode.md and examples/diode/recv.yaml)')
    .addHelpText(
      'after',
      '\nPrints "ready" once listening; on SIGTERM/SIGINT resets unfinished sessions and prints its counters as JSON.',
    )
    .action(async (opts: { config: string }) => {
      const receiver = new Receiver(loadConfig(opts.config, recvSchema));
      return serve(receiver, () => receiver.reloadKeys());
    });
  diode
    .command('model')
    .description(
      "the paper's evaluation from its equations: transfer time of store-and-forward vs RED (Fig. 7-8, Table 4-5) " +
        'and the final packet error rate with n copies (Fig. 9)',
    )
    .option('--measured <recv-stats.json>', 'also print the measured counterpart from a receiver stats file')
    .option(
      '--sender <send-stats.json>',
      'with --measured: the sender stats file of the same run (copies per frame)',
    )
    .action((opts: { measured?: string; sender?: string }) => {
      console.log(modelReport());
      if (opts.measured) {
        const read = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
        const run: MeasuredRun = {
          receiver: read(opts.measured),
          ...(opts.sender ? { sender: read(opts.sender) } : {}),
        };
        console.log(`\n${measuredReport(run)}`);
      }
    });
  diode
    .command('send-file')
    .description(
      "hand files to the sender: each is copied into the sender's spool with its manifest (name, size, SHA-256, " +
        'time) and acknowledged once it is safely on disk; then shows the progress of its first round',
    )
    .requiredOption('-c, --config <file>', 'the send.yaml of the running sender')
    .option('--no-wait', 'return once the files are spooled')
    .argument('<path...>', 'files to send')
    .action(async (paths: string[], opts: { config: string; wait: boolean }) => {
      const config = loadConfig(opts.config, sendSchema);
      const spool = new FileSpool(config.store.dir, chunkBytes(config));
      const accepted: Manifest[] = [];
      for (const path of paths) {
        try {
          const m = await spool.accept(path);
          accepted.push(m);
          console.log(`accepted ${m.name}  ${m.size} bytes  sha256 ${m.sha256}  id ${m.id}`);
        } catch (err) {
          console.error(
            `refused ${path}: ${err instanceof SpoolFullError ? err.message : (err as Error).message}`,
          );
          process.exitCode = 1;
        }
      }
      if (opts.wait && accepted.length > 0) await followProgress(config, accepted);
    });
  diode
    .command('calibrate')
    .description(
      'measure how fast this sender and its receiver go together: files of random bytes through the whole ' +
        'file path (tags, FEC as configured) at rising shares of link.rateMbit; run it in place of the sender. ' +
        'The receiver keeps the result in <stateDir>/calibration.json: copy it here and name it in link.calibration, ' +
        'and the sender warns at start when its rate is above what the pair sustained',
    )
    .requiredOption('-c, --config <file>', 'send.yaml (the sender itself must not be running)')
    .option('--seconds <s>', 'seconds of each step', positive, 3)
    .option('--steps <percent,...>', 'steps, as % of link.rateMbit', '25,50,75,100')
    .action(async (opts: { config: string; seconds: number; steps: string }) => {
      const config = loadConfig(opts.config, sendSchema);
      const steps = opts.steps.split(',').map(Number);
      if (steps.some((p) => !(p > 0 && p <= 1000)))
        throw new InvalidArgumentError('--steps: percentages, 1-1000');
      console.log(
        `calibrating ${config.link.to.host}:${config.link.to.port} at ${steps.join(', ')} % of ${config.link.rateMbit} Mbit/s, ${opts.seconds} s each`,
      );
      await calibrate(config, {
        seconds: opts.seconds,
        steps,
        onStep: (s) =>
          console.log(
            `  step ${s.step + 1}: paced at ${s.rateMbit} Mbit/s, ${(s.bytes / 1e6).toFixed(1)} MB sent at ${s.sentMbit} Mbit/s of goodput`,
          ),
      });
      console.log(
        'the receiver has the result in <stateDir>/calibration.json (and in its log): copy it to this machine and set link.calibration to it',
      );
      process.exit(0);
    });
  diode
    .command('status')
    .description('what a sender or receiver is doing: link, files sent / received / incomplete / quarantined')
    .requiredOption('-c, --config <file>', 'its send.yaml or recv.yaml')
    .option('--json', 'as JSON')
    .action((opts: { config: string; json?: boolean }) => {
      const text = readFileSync(opts.config, 'utf8');
      let s: ReturnType<typeof senderStatus>;
      try {
        s = senderStatus(parseConfig(opts.config, text, sendSchema));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        s = receiverStatus(parseConfig(opts.config, text, recvSchema));
      }
      console.log(opts.json ? JSON.stringify(s.json, null, 2) : s.text);
    });
  diode
    .command('keygen')
    .description('add a random key to a key file (created with mode 0600); see docs/diode.md for rotation')
    .argument('<file>', 'the key file')
    .option('--id <n>', 'key id (default: one more than the highest in the file)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('an integer 1-65535');
      return n;
    })
    .action((file: string, opts: { id?: number }) => {
      let ids: number[] = [];
      try {
        ids = [...readKeyFile(file).keys()];
      } catch {
        // a new file
      }
      const id = opts.id ?? Math.max(0, ...ids) + 1;
      generateKey(file, id);
      console.log(`key ${id} added to ${file}`);
    });
  diode
    .command('fec')
    .description('how many FEC repair symbols a block gets for a loss rate and burst length (fec-sizing.ts)')
    .requiredOption('--loss <percent>', 'expected loss, %', Number)
    .option('--burst <frames>', 'mean burst length', Number, 1)
    .option('--margin <fraction>', 'extra loss planned for', Number, 0.1)
    .option('--failure <p>', 'acceptable block failure probability', Number, 1e-5)
    .action((o: { loss: number; burst: number; margin: number; failure: number }) => {
      console.log(
        describeSizing({ loss: o.loss / 100, burst: o.burst, margin: o.margin, failure: o.failure }),
      );
    });
  diode.addCommand(diodeDemoCommand());
  return diode;
}

function positive(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('a positive number');
  return n;
}

/** The chunk size of files: one chunk per frame, so it follows the link's frame size. */
function chunkBytes(config: SendConfig): number {
  return maxPayloadFor(config.link.datagramBytes, !!config.auth, !!config.fec?.enabled);
}

/** Draws a progress bar per file from the sender's stats file until each finished its first round. */
async function followProgress(config: SendConfig, files: Manifest[]): Promise<void> {
  if (!config.stats.file) {
    console.error('(no progress: set stats.file in the sender config to follow it)');
    return;
  }
  const tty = process.stderr.isTTY;
  const pending = new Set(files.map((f) => f.id));
  let lastPrint = 0;
  let waitedMs = 0;
  while (pending.size > 0) {
    await new Promise((r) => setTimeout(r, 250));
    waitedMs += 250;
    const live = readStats(config.stats.file);
    if (!live || live.ageMs > 5000) {
      if (waitedMs > 10_000) {
        console.error(
          'the sender is not running (its stats file is missing or stale); the files stay spooled',
        );
        return;
      }
      continue;
    }
    const progress: FileProgress[] = live.stats.files?.spool ?? [];
    const mine = progress.filter((p) => pending.has(p.id));
    for (const id of [...pending]) {
      const p = progress.find((x) => x.id === id);
      if (!p || p.roundsDone >= 1) {
        pending.delete(id);
        const f = files.find((x) => x.id === id)!;
        process.stderr.write(`${tty ? '\r\x1b[K' : ''}sent ${f.name} (${f.size} bytes)\n`);
      }
    }
    const line = mine
      .filter((p) => pending.has(p.id))
      .map((p) => progressLine(p))
      .join(' | ');
    if (!line) continue;
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else if (Date.now() - lastPrint > 2000) {
      process.stderr.write(`${line}\n`);
      lastPrint = Date.now();
    }
  }
}
