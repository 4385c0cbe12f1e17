/**
 * `tacmesh diode demo --scenario`: a short story told on the live link — a clean link, then
 * 5 % loss in bursts, then a kill -9 of the receiver in the middle of a file and its restart
 * — with files dropped into the outbox at each step, and the link clean again while the last
 * rounds land. The report that follows says what became of every file.
 */
import type { DiodeDemo } from './demo.js';
import type { Snapshot } from './watch.js';

export const SCENARIO_LOSS_PCT = 5;
export const SCENARIO_BURST = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1_000_000;

export interface ScenarioHooks {
  /** What the scenario is doing now (a line for the screen). */
  say(step: string): void;
  /** A line for the events. */
  event(text: string): void;
  snapshot(): Snapshot;
}

/**
 * Waits until the sender has taken `count` files in all and every one has left the link's
 * hands (complete, or known incomplete), at most `ms`.
 */
async function filesSettled(hooks: ScenarioHooks, count: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const files = hooks.snapshot().files;
    if (files.length >= count && files.every((f) => !['sending', 'receiving'].includes(f.state))) return;
    await sleep(500);
  }
}

/** Three files of 1, 4 and 8 MB into the outbox, named for the step. */
function dropFiles(demo: DiodeDemo, step: string): void {
  for (const size of [1, 4, 8]) demo.drop(`${step}-${size}MB.bin`, size * MB);
}

export async function playScenario(demo: DiodeDemo, hooks: ScenarioHooks): Promise<void> {
  hooks.say('1/4 a clean link: three files (1, 4, 8 MB)');
  await demo.setLink({ lossPct: 0, burst: 1 });
  dropFiles(demo, 'clean');
  await filesSettled(hooks, 3, 30_000);

  hooks.say(`2/4 ${SCENARIO_LOSS_PCT} % loss in bursts of ${SCENARIO_BURST}: FEC repairs, three more files`);
  await demo.setLink({ lossPct: SCENARIO_LOSS_PCT, burst: SCENARIO_BURST });
  hooks.event(`link: ${SCENARIO_LOSS_PCT} % loss in bursts of ${SCENARIO_BURST}`);
  dropFiles(demo, 'lossy');
  await filesSettled(hooks, 6, 45_000);

  hooks.say('3/4 kill -9 of the receiver in the middle of a file; restarted 3 s later');
  demo.drop('killed-12MB.bin', 12 * MB);
  const deadline = Date.now() + 20_000;
  // Killed once the receiver holds part of it: what it saved survives, the rest comes again.
  while (Date.now() < deadline) {
    const f = hooks.snapshot().files.find((x) => x.name === 'killed-12MB.bin');
    if ((f?.recv?.fraction ?? 0) > 0.2) break;
    await sleep(100);
  }
  await demo.killReceiver();
  hooks.event('receiver: killed with SIGKILL');
  await sleep(3000);
  await demo.startDiode('recv');
  hooks.event('receiver: restarted');

  hooks.say('4/4 a clean link again, while the last rounds land');
  await demo.setLink({ lossPct: 0, burst: 1 });
  hooks.event('link: clean');
  await filesSettled(hooks, 7, 90_000);
}
