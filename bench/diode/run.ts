/**
 * The diode against udpcast on the same emulated one-way link (TBF rate limit, linkem
 * loss, nothing travels back), in one run:
 *
 *   node --import tsx bench/diode/run.ts [--mb 200] [--runs 3] [--loss 0,0.1,1,5] [--rate 100]
 *     [--mode file|tcp|copies] [--burst-ms N] [--code auto|ldpc|raptorq]
 *
 * tacmesh, --mode file (default): a --mb file handed over with `tacmesh diode send-file`,
 * with authenticated frames and FEC sized for the link's loss (expectedLoss = the loss, or
 * 0.1 % on a clean link; blocks of 4096; the code `auto` picks, or --code), no copies,
 * paced at the link rate;
 * goodput from the moment send-file has spooled it to the file's atomic arrival in the
 * receiver's inbox (its SHA-256 checked there, and again here).
 * --mode tcp: a --mb TCP stream through the proxies, with the same tags and FEC; goodput
 * from the destination's connection (made on the session's open frame) to its clean end.
 * --mode copies: the paper's configuration — the TCP stream with copies only: n copies
 * such that frames·p^(n+1) stays under 1e-3 and Th2 = the link's payload rate / (n+1).
 * udpcast: `udp-sender --async --fec 8x8/128` (8x32/128, i.e. 25 %, above 1 % loss, where
 * the lighter one fails) → `udp-receiver --rcvbuf 4194304` (their one-way mode); goodput
 * from "Starting transfer" to the receiver's exit. Both: bit-identical (SHA-256) or not.
 * A run that fails is a row with 0 and why (quarantined and its error, stalled, timed out),
 * and the bench goes on; the note says when the receiver reported itself overloaded.
 * Each row prints as it is measured, then a table and the median ratio per loss.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { codeFor } from '../../src/diode/protocol/fec-code.js';
import { run } from '../../src/shared/exec.js';
import { requirePrograms } from '../../src/shared/programs.js';
import { DiodeLab, type SinkConnection, type SourceResult } from '../../test/support/diode/harness.js';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
    loss: { type: 'string', default: '0,0.1,1,5' },
    rate: { type: 'string', default: '100' },
    mode: { type: 'string', default: 'file' },
    'burst-ms': { type: 'string' },
    code: { type: 'string', default: 'auto' },
  },
});
if (!['auto', 'ldpc', 'raptorq'].includes(values.code))
  throw new Error('--code must be auto, ldpc or raptorq');
const MODES: Record<string, string> = {
  file: 'file, FEC + auth',
  tcp: 'TCP stream, FEC + auth',
  copies: 'TCP stream, copies only',
};
if (!MODES[values.mode]) throw new Error(`--mode must be one of ${Object.keys(MODES).join(', ')}`);
const mb = Number(values.mb);
const runs = Number(values.runs);
const losses = values.loss.split(',').map((p) => Number(p) / 100);
const rate = Number(values.rate);
const bytes = mb * 1_000_000;
const DATAGRAM = 1472;
const PAYLOAD = DATAGRAM - 32;
const WIRE = DATAGRAM + 42;
const linkOptions = {
  rateMbit: rate,
  datagramBytes: DATAGRAM,
  ...(values['burst-ms'] ? { burstMs: Number(values['burst-ms']) } : {}),
};

interface Outcome {
  mbit: number;
  identical: boolean;
  note: string;
}

/** CPU seconds (user + system, all threads) a process has used so far; USER_HZ is 100 on Linux. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** What the two ends used of the CPU over a transfer of `bytes`: per end, and Mbit/s per core. */
function cpuNote(send: number, recv: number): string {
  const perCore = (bytes * 8) / (send + recv) / 1e6;
  return `CPU send ${send.toFixed(1)} s + recv ${recv.toFixed(1)} s: ${perCore.toFixed(0)} Mbit/s per core`;
}

/** Copies and Th2 an operator would set for loss p on this link (see the header). */
function plan(p: number): { copies: number; th2Mbit: number | undefined } {
  if (p === 0) return { copies: 0, th2Mbit: undefined };
  const frames = bytes / PAYLOAD;
  const copies = Math.max(1, Math.ceil(Math.log(1e-3 / frames) / Math.log(p)) - 1);
  return { copies, th2Mbit: Math.floor(((rate * PAYLOAD) / WIRE / (copies + 1)) * 0.97) };
}

/** A file with FEC and auth: send-file → inbox. */
async function tacmeshFiles(
  d: DiodeLab,
  input: string,
  inputSha: string,
  p: number,
  i: number,
): Promise<Outcome> {
  const keys = d.keyFile(`bench-keys-${i}`);
  const inbox = join(d.dir, `bench-inbox-${i}`);
  const recv = await d.receiver({ auth: { keyFile: keys }, tcp: { allow: [] }, files: { inbox } });
  const send = await d.sender(
    {
      ...protection(keys, p),
      store: { dir: join(d.dir, `bench-store-${i}`) },
      files: { outbox: join(d.dir, `bench-outbox-${i}`) },
    },
    linkOptions,
  );
  try {
    const t = await d.cli(['send-file', '--config', send.configFile, '--no-wait', input]);
    if (t.child.exitCode !== 0) return failed(`send-file failed: ${t.stdout.trim()}`);
    const t0 = performance.now();
    const cpu0 = [cpuSeconds(send.tool.child.pid), cpuSeconds(recv.tool.child.pid)];
    const target = join(inbox, 'udpcast-in.bin');
    const quarantine = join(inbox, '.tacmesh', 'quarantine');
    const end = await until(recv.statsFile, () => {
      if (existsSync(target)) return { arrived: true as const };
      const q = existsSync(quarantine) ? readdirSync(quarantine) : [];
      if (q.length > 0)
        return {
          arrived: false as const,
          reason: `quarantined: ${quarantineError(join(quarantine, q[0]!))}`,
        };
      return undefined;
    });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = [cpuSeconds(send.tool.child.pid) - cpu0[0]!, cpuSeconds(recv.tool.child.pid) - cpu0[1]!];
    const s = receiverStats(recv.statsFile);
    const sha = end.arrived ? await sha256(target) : '';
    const identical = sha === inputSha;
    const why = end.arrived ? (identical ? '' : ', NOT bit-identical') : `, ${end.reason}`;
    return {
      mbit: identical ? (bytes * 8) / seconds / 1e6 : 0,
      identical,
      note: `${fecNote(p, s)}${why}; ${cpuNote(cpu[0]!, cpu[1]!)}`,
    };
  } finally {
    await send.stop().catch(() => undefined);
    await recv.stop().catch(() => undefined);
  }
}

/** The error a quarantine record gives. */
function quarantineError(dir: string): string {
  try {
    return JSON.parse(readFileSync(join(dir, 'error.json'), 'utf8')).error;
  } catch {
    return 'no error record';
  }
}

// biome-ignore lint/suspicious/noExplicitAny: stats JSON from the receiver process
function receiverStats(file: string): any {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

const failed = (reason: string): Outcome => ({ mbit: 0, identical: false, note: reason });

/** No frame arriving for this long ends a run as stalled. */
const STALL_MS = 30_000;

/**
 * Polls `done` every 200 ms until it gives an answer; or the receiver (its stats file) has
 * taken no frame for STALL_MS; or the transfer has taken ten times its time at the link rate
 * (+ a minute). Never leaves a timer behind: a failed run must not hold the bench.
 */
async function until<T>(
  statsFile: string,
  done: () => T | undefined,
): Promise<T | { arrived: false; reason: string }> {
  const deadline = performance.now() + ((bytes * 8) / (rate * 1e6)) * 10_000 + 60_000;
  let frames = -1;
  let movedAt = performance.now();
  for (;;) {
    const answer = done();
    if (answer !== undefined) return answer;
    const now = performance.now();
    const seen = receiverStats(statsFile)?.link?.datagrams ?? -1;
    if (seen !== frames) {
      frames = seen;
      movedAt = now;
    }
    if (now - movedAt > STALL_MS)
      return { arrived: false, reason: `stalled: no datagram for ${STALL_MS / 1000} s` };
    if (now > deadline) return { arrived: false, reason: 'timed out' };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The loss FEC is sized for at link loss `p`: 0.1 % on a clean link. */
const expectedLoss = (p: number) => Math.max(p, 0.001);
/** The FEC code: --code, or what `auto` picks for the loss. */
const fecCode = (p: number) => (values.code === 'auto' ? codeFor('auto', expectedLoss(p), 1) : values.code);

/** Tags and FEC sized for loss `p`, no copies: the file and tcp modes. */
function protection(keyFile: string, p: number) {
  return {
    auth: { keyFile },
    fec: { expectedLoss: expectedLoss(p), blockFrames: 4096, maxDelayMs: 1000, code: fecCode(p) },
    copies: { high: [], low: [] },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: stats JSON from the receiver process
function fecNote(p: number, s: any): string {
  const fec = s?.link?.fec;
  if (!fec) return 'no receiver stats';
  const o = s.link.overload;
  const overload = o?.episodes
    ? `; RECEIVER OVERLOADED (last at ${o.lastMbit} Mbit/s): ${o.kernelDrops} dropped by the kernel, ${o.queueDrops} not processed in time`
    : '';
  const decodes = fec.decodes
    ? `, ${fec.decodes} decodes (${fec.decodesShort} short, ${Math.round(fec.decodeMs)} ms in all), ${fec.framesRecovered} frames rebuilt, ${s.link.stale} stale, ${s.link.lostFrames} frames lost`
    : '';
  return `FEC ${fecCode(p)} for ${(expectedLoss(p) * 100).toFixed(1)} %: ${fec.repaired} blocks repaired, ${fec.failed} failed, min spare ${fec.minSpare}${fec.late ? `, ${fec.late} late symbols` : ''}${decodes}${overload}`;
}

/** A TCP stream through the proxies: with tags and FEC (`fec`), or with the paper's copies. */
async function tacmeshTcp(d: DiodeLab, p: number, i: number, fec: boolean): Promise<Outcome> {
  const { copies, th2Mbit } = fec ? { copies: 0, th2Mbit: undefined } : plan(p);
  const keys = fec ? d.keyFile(`bench-keys-${i}`) : undefined;
  const allow = { allow: [`127.0.0.1:${9000 + i}`] };
  const recv = await d.receiver(
    keys ? { auth: { keyFile: keys }, tcp: allow } : { insecure: true, tcp: allow },
  );
  const sink = await d.sink(9000 + i);
  const send = await d.sender(
    {
      tcp: [{ name: 'bench', listen: `127.0.0.1:${9500 + i}`, destination: `127.0.0.1:${9000 + i}` }],
      store: { dir: join(d.dir, `bench-store-${i}`) },
      ...(keys ? protection(keys, p) : {}),
      ...(th2Mbit ? { throughput: [{ match: { service: 'bench' }, mbit: th2Mbit }] } : {}),
      ...(copies ? { copies: { high: [{ freeAtLeast: 0.2, copies }] } } : {}),
    },
    linkOptions,
  );
  const source = d.startSource(9500 + i, bytes, `bench-${i}`);
  const cpu0 = [cpuSeconds(send.tool.child.pid), cpuSeconds(recv.tool.child.pid)];
  try {
    const end = await until(recv.statsFile, () => {
      const got = sink.lines<SinkConnection>()[0];
      return got && source.tool.child.exitCode !== null ? { arrived: true as const, got } : undefined;
    });
    if (!end.arrived)
      return failed(`${end.reason}${sink.lines().length ? '' : ', no destination connection'}`);
    const sent = source.lines<SourceResult>().at(-1);
    const got = end.got;
    // From the destination's connection (made on the session's open frame) to its close.
    const seconds = (got.samples.at(-1)?.[0] ?? Number.NaN) / 1000;
    const identical = got.outcome === 'end' && got.sha256 === sent?.sha256;
    const cpu = cpuNote(
      cpuSeconds(send.tool.child.pid) - cpu0[0]!,
      cpuSeconds(recv.tool.child.pid) - cpu0[1]!,
    );
    const s = keys ? receiverStats(recv.statsFile) : undefined;
    const how = keys ? fecNote(p, s) : `${copies} copies${th2Mbit ? `, Th2 ${th2Mbit}` : ''}`;
    return {
      mbit: identical ? (bytes * 8) / seconds / 1e6 : 0,
      identical,
      note: `${how}${identical ? '' : `, ${got.outcome}`}; ${cpu}`,
    };
  } finally {
    if (source.tool.child.exitCode === null) await source.kill();
    await send.stop().catch(() => undefined);
    await recv.stop().catch(() => undefined);
    await sink.kill();
  }
}

/** `p`, or 'timeout' after `ms` (the timer does not outlive the answer). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function udpcast(d: DiodeLab, input: string, p: number, i: number): Promise<Outcome> {
  const fec = p > 0.01 ? '8x32/128' : '8x8/128';
  const output = `${d.dir}/udpcast-out-${i}.bin`;
  const rdv = ['--mcast-rdv-address', d.recvAddr];
  const recv = d.lab.spawn(
    d.recvNs,
    'udp-receiver',
    ['--file', output, '--interface', d.link.toIface, '--nokbd', '--rcvbuf', '4194304', ...rdv],
    { stdio: 'ignore' },
  );
  const received = new Promise<number | null>((r) => recv.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  let t0 = 0;
  const send = d.lab.spawn(
    d.sendNs,
    'udp-sender',
    [
      '--file',
      input,
      '--interface',
      d.link.fromIface,
      '--async',
      '--fec',
      fec,
      '--max-bitrate',
      `${rate}m`,
      '--autostart',
      '1',
      '--nokbd',
      ...rdv,
      '--mcast-data-address',
      d.recvAddr,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  send.stderr?.on('data', (chunk: Buffer) => {
    if (!t0 && chunk.toString().includes('Starting transfer')) t0 = performance.now();
  });
  // Their CPU, sampled while they run (a process's counters go with it).
  const cpu = { send: 0, recv: 0 };
  const sampler = setInterval(() => {
    cpu.send = Math.max(cpu.send, cpuSeconds(send.pid) || 0);
    cpu.recv = Math.max(cpu.recv, cpuSeconds(recv.pid) || 0);
  }, 100);
  const sent = new Promise((r) => send.once('exit', r));
  await within(sent, ((bytes * 8) / (rate * 1e6)) * 10_000 + 60_000);
  if (send.exitCode === null) send.kill('SIGKILL');
  const code = await within(received, 10_000);
  clearInterval(sampler);
  const seconds = (performance.now() - t0) / 1000;
  if (code === 'timeout') recv.kill('SIGKILL');
  const identical = code === 0 && (await sha256(output).catch(() => '')) === (await sha256(input));
  return {
    mbit: identical ? (bytes * 8) / seconds / 1e6 : 0,
    identical,
    note: `fec ${fec}${identical ? '' : `, receiver ${code}`}; ${cpuNote(cpu.send, cpu.recv)}`,
  };
}

const rows: string[] = [];
const perLoss = new Map<number, { tacmesh: Outcome[]; udpcast: Outcome[] }>();
requirePrograms(['udp-sender', 'udp-receiver'], 'the diode benchmark (its peer, udpcast)');
const d = await DiodeLab.create({ subnet: 210, rateMbit: rate });
try {
  const input = `${d.dir}/udpcast-in.bin`;
  await run('sh', ['-c', `head -c ${bytes} /dev/urandom > ${input}`]);
  const inputSha = await sha256(input);
  let i = 0;
  for (const p of losses) {
    d.link.forward.setLoss(p);
    for (let r = 0; r < runs; r++, i++) {
      const a = await (values.mode === 'file'
        ? tacmeshFiles(d, input, inputSha, p, i)
        : tacmeshTcp(d, p, i, values.mode === 'tcp')
      ).catch((err: Error) => failed(`failed: ${err.message}`));
      const b = await udpcast(d, input, p, i).catch((err: Error) => failed(`failed: ${err.message}`));
      const ratio = b.mbit > 0 ? (a.mbit / b.mbit).toFixed(2) : a.mbit > 0 ? 'inf' : '-';
      const row = `${`${(p * 100).toFixed(1)} %`.padStart(6)} ${String(r + 1).padStart(3)}  ${a.mbit.toFixed(1).padStart(7)} ${(a.identical ? 'yes' : 'NO').padStart(4)}  ${b.mbit.toFixed(1).padStart(7)} ${(b.identical ? 'yes' : 'NO').padStart(4)}  ${ratio.padStart(6)}   ${a.note}; ${b.note}`;
      rows.push(row);
      console.error(row);
      const seen = perLoss.get(p) ?? { tacmesh: [], udpcast: [] };
      seen.tacmesh.push(a);
      seen.udpcast.push(b);
      perLoss.set(p, seen);
    }
  }
} finally {
  await d.close();
}
console.log(
  `\ntacmesh diode (${MODES[values.mode]}) vs udpcast: ${mb} MB over a ${rate} Mbit/s one-way link (goodput in Mbit/s; 0 = not bit-identical)`,
);
console.log('  loss run  tacmesh  ok   udpcast  ok   ratio   configuration');
for (const r of rows) console.log(r);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const identical = (os: Outcome[]) => `${os.filter((o) => o.identical).length}/${os.length}`;
console.log('\n  loss  tacmesh median  bit-identical  udpcast median  bit-identical  ratio of medians');
for (const [p, seen] of perLoss) {
  const a = median(seen.tacmesh.map((o) => o.mbit));
  const b = median(seen.udpcast.map((o) => o.mbit));
  console.log(
    `${`${(p * 100).toFixed(1)} %`.padStart(6)}  ${a.toFixed(1).padStart(14)}  ${identical(seen.tacmesh).padStart(13)}  ${b.toFixed(1).padStart(14)}  ${identical(seen.udpcast).padStart(13)}  ${(b > 0 ? (a / b).toFixed(2) : '-').padStart(16)}`,
  );
}
