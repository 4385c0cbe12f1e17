/**
 * What a process costs, read from /proc for the benches: its CPU time (and its
 * descendants'), its resident memory, and the kernel run time of the eBPF programs it holds
 * (each program's fdinfo; the kernel counts it only while kernel.bpf_stats_enabled is 1).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICK_NS = 1e7;
const BPF_STATS = '/proc/sys/kernel/bpf_stats_enabled';

/** CPU ns (user + system) of a process and (`tree`) every descendant (pmacctd forks its plugins). */
export function treeCpuNs(root: number, tree = true): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after the name: state ppid ... utime(14th overall, index 11 here) stime
      stats.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  let total = 0;
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop() as number;
    total += (stats.get(pid)?.ticks ?? 0) * TICK_NS;
    if (tree) for (const [child, s] of stats) if (s.ppid === pid) todo.push(child);
  }
  return total;
}

/** Resident memory of a process (VmRSS), bytes. */
export function rssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? Number.NaN) * 1024;
}

/** Kernel run time and runs so far of every eBPF program a process holds a descriptor of. */
export function heldBpfRunTime(pid: number): { programs: number; ns: number; runs: number } {
  const seen = new Map<string, { ns: number; runs: number }>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    // A program's own descriptor has its run time; a link's names the program only.
    const id = /^prog_id:\s+(\d+)/m.exec(info)?.[1];
    const ns = /^run_time_ns:\s+(\d+)/m.exec(info)?.[1];
    const runs = /^run_cnt:\s+(\d+)/m.exec(info)?.[1];
    if (id && ns && runs) seen.set(id, { ns: Number(ns), runs: Number(runs) });
  }
  let ns = 0;
  let runs = 0;
  for (const p of seen.values()) {
    ns += p.ns;
    runs += p.runs;
  }
  return { programs: seen.size, ns, runs };
}

/** Runs `fn` with the kernel counting eBPF run time, and restores the setting it found. */
export async function withBpfStats<T>(fn: () => Promise<T>): Promise<T> {
  const before = readFileSync(BPF_STATS, 'utf8').trim();
  writeFileSync(BPF_STATS, '1');
  try {
    return await fn();
  } finally {
    writeFileSync(BPF_STATS, before);
  }
}
