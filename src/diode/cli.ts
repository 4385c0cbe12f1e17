/** `tacmesh diode`: the RED sender and receiver, and the paper's model. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { loadConfig, recvSchema, sendSchema } from './config.js';
import { type MeasuredRun, measuredReport, modelReport } from './model.js';
import { Receiver } from './receiver.js';
import { Sender } from './sender.js';

/** Runs until SIGTERM/SIGINT, then stops and prints the final counters as one JSON line. */
async function serve(part: { start(): Promise<void>; stop(): Promise<void> | void; stats(): unknown }) {
  await part.start();
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
      '\nPrints "ready" once listening; on SIGTERM/SIGINT sends what is queued and prints its counters as JSON.',
    )
    .action(async (opts: { config: string }) => serve(new Sender(loadConfig(opts.config, sendSchema))));
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
    .action(async (opts: { config: string }) => serve(new Receiver(loadConfig(opts.config, recvSchema))));
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
  return diode;
}
