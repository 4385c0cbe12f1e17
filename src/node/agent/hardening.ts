/**
 * The node process keeps only the capabilities it needs (the software side of the paper's
 * trusted cell):
 *
 *   CAP_NET_ADMIN  links, addresses, routes, rules, qdiscs (netlink), tcx attach of flowmon
 *   CAP_SYS_ADMIN  setns(2) into the node and member namespaces, `ip netns add` (a bind
 *                  mount), and, as bpf_capable(), loading flowmon and reading its maps
 *   CAP_NET_BIND_SERVICE  the mesh stage's STAMP reflector on its well-known port, 862
 *
 * CAP_BPF and CAP_PERFMON are not kept: the kernel grants what they allow to CAP_SYS_ADMIN
 * as well, and the namespace work cannot go without CAP_SYS_ADMIN.
 *
 * Capabilities are per thread, and Node.js starts its worker threads before any of our code
 * runs, so dropping them in place would leave those threads privileged. Instead the process
 * lowers its bounding set, clears its inheritable and ambient sets, and re-executes itself
 * (execve replaces every thread): the new image — same pid, same arguments — has exactly the
 * kept set in every thread, and so do the `ip`/`tc` it runs. no_new_privs, set before the
 * execve and kept by it, means no set-uid or file-capability program can give any back.
 *
 * Through libc (prctl, capget/capset, execve) by koffi: the kernel's own interface, no
 * extra package (libcap's capsh could only wrap the process from outside, before start).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { SysError } from '../../shared/errno.js';
import { errno, loadLibrary } from '../../shared/libc.js';
import { nodeLog as log } from '../../shared/log.js';

export const CAPABILITIES: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

export const NODE_CAPABILITIES = ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_NET_BIND_SERVICE'] as const;

/** Set in the re-executed image, so it checks its capabilities instead of dropping them again. */
const MARK = 'TACMESH_CAPS_DROPPED';

const PR_CAPBSET_DROP = 24;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
const CAP_VERSION_3 = 0x20080522;

const c = loadLibrary('libc.so.6');
const prctl = c.func(
  'int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)',
) as (option: number, a2: number, a3: number, a4: number, a5: number) => number;
const capget = c.func('int capget(void *hdr, void *data)') as (hdr: Buffer, data: Buffer) => number;
const capset = c.func('int capset(void *hdr, void *data)') as (hdr: Buffer, data: Buffer) => number;
const fcntl = c.func('int fcntl(int fd, int cmd, int arg)') as (
  fd: number,
  cmd: number,
  arg: number,
) => number;
const F_SETFD = 2;
const execve = c.func('int execve(const char *path, const char **argv, const char **envp)') as (
  path: string,
  argv: (string | null)[],
  envp: (string | null)[],
) => number;

export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const bit = CAPABILITIES[n];
    if (bit === undefined) throw new Error(`unknown capability ${n}`);
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

export function capabilityNames(mask: bigint): string[] {
  return Object.entries(CAPABILITIES)
    .filter(([, bit]) => (mask >> BigInt(bit)) & 1n)
    .map(([name]) => name);
}

export interface TaskCapabilities {
  tid: number;
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  bounding: bigint;
  ambient: bigint;
  noNewPrivs: boolean;
}

/** The capability sets of every thread of a process, from /proc. */
export function processCapabilities(pid: number | 'self' = 'self'): TaskCapabilities[] {
  const base = `/proc/${pid}/task`;
  const tids = readdirSync(base).sort((a, b) => Number(a) - Number(b));
  return tids.map((tid) => {
    const status = readFileSync(`${base}/${tid}/status`, 'utf8');
    const field = (name: string) => {
      const m = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status);
      return m ? m[1]! : '';
    };
    const hex = (name: string) => BigInt(`0x${field(name) || '0'}`);
    return {
      tid: Number(tid),
      effective: hex('CapEff'),
      permitted: hex('CapPrm'),
      inheritable: hex('CapInh'),
      bounding: hex('CapBnd'),
      ambient: hex('CapAmb'),
      noNewPrivs: field('NoNewPrivs') === '1',
    };
  });
}

function lastCap(): number {
  return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
}

/** Sets this thread's inheritable set to `inheritable` (effective and permitted unchanged). */
function setInheritable(inheritable: bigint): void {
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(CAP_VERSION_3, 0);
  const data = Buffer.alloc(24);
  if (capget(hdr, data) !== 0) throw new SysError('capget', errno());
  data.writeUInt32LE(Number(inheritable & 0xffffffffn), 8);
  data.writeUInt32LE(Number(inheritable >> 32n), 20);
  if (capset(hdr, data) !== 0) throw new SysError('capset', errno());
}

export interface HardeningReport {
  kept: string[];
  threads: number;
}

/**
 * Drops every capability but `keep` from the whole process (see the file comment): on first
 * call it re-executes the process and does not return; in the new image it checks that every
 * thread holds `keep` at most and no_new_privs, and returns what it found.
 */
export function dropCapabilities(keep: readonly string[] = NODE_CAPABILITIES): HardeningReport {
  const mask = capabilityMask(keep);
  if (process.env[MARK] !== '1') {
    if (process.getuid?.() !== 0)
      throw new Error('the node agent runs as root; it drops what it does not need itself');
    for (let cap = 0; cap <= lastCap(); cap++) {
      if ((mask >> BigInt(cap)) & 1n) continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) !== 0) throw new SysError(`PR_CAPBSET_DROP(${cap})`, errno());
    }
    setInheritable(0n);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) !== 0)
      throw new SysError('PR_CAP_AMBIENT_CLEAR_ALL', errno());
    // Per thread as well, and kept across execve: every thread of the new image has it.
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0) throw new SysError('PR_SET_NO_NEW_PRIVS', errno());
    const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
    const env = Object.entries({ ...process.env, [MARK]: '1' }).map(([k, v]) => `${k}=${v}`);
    // libuv marks the standard streams close-on-exec; the new image needs them.
    for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0);
    execve(process.execPath, [...argv, null], [...env, null]);
    throw new SysError(`execve(${process.execPath})`, errno());
  }
  const tasks = processCapabilities();
  for (const t of tasks) {
    const extra = (t.effective | t.permitted | t.bounding | t.inheritable | t.ambient) & ~mask;
    if (extra) throw new Error(`thread ${t.tid} still holds ${capabilityNames(extra).join(', ')}`);
    if (!t.noNewPrivs) throw new Error(`thread ${t.tid} lacks no_new_privs`);
  }
  const kept = capabilityNames(tasks[0]?.effective ?? 0n);
  log.info({ kept, threads: tasks.length }, 'capabilities dropped');
  return { kept, threads: tasks.length };
}
