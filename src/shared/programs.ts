/**
 * Every external program that tacmesh, its tests and its benches run, with the Debian
 * package that provides it. scripts/setup.sh installs these packages, and
 * test/project.test.ts checks each entry against `dpkg -S` and setup's list, and that no
 * spawned program is missing here. A component checks the programs it needs before it
 * starts anything, so a missing one is named at once, with its package — never found out
 * by a timeout.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** Program → Debian package (null: comes with Node.js, which the README requires first). */
export const PROGRAMS = {
  ip: 'iproute2',
  tc: 'iproute2',
  ss: 'iproute2',
  nstat: 'iproute2',
  bpftool: 'bpftool',
  clang: 'clang',
  nsenter: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  sysctl: 'procps',
  ps: 'procps',
  ping: 'iputils-ping',
  sh: 'dash',
  openssl: 'openssl',
  'systemd-analyze': 'systemd',
  cat: 'coreutils',
  head: 'coreutils',
  sleep: 'coreutils',
  mkdir: 'coreutils',
  'dpkg-query': 'dpkg',
  // Debian's, by its path: a python3 earlier on PATH (pyenv, a venv) is not what setup installs.
  '/usr/bin/python3': 'python3-minimal',
  babeld: 'babeld',
  iperf3: 'iperf3',
  irtt: 'irtt',
  'udp-sender': 'udpcast',
  'udp-receiver': 'udpcast',
  influxd: 'influxdb',
  'nats-server': 'nats-server',
  softflowd: 'softflowd',
  softflowctl: 'softflowd',
  pmacctd: 'pmacct',
  pmacct: 'pmacct',
  nfcapd: 'nfdump',
  nfdump: 'nfdump',
  chromium: 'chromium',
  haproxy: 'haproxy',
  // VM members (docs/agent.md): QEMU, and what scripts/vm/build-image.sh builds their initramfs with.
  'qemu-system-x86_64': 'qemu-system-x86',
  busybox: 'busybox-static',
  cpio: 'cpio',
  gzip: 'gzip',
  npx: null,
} as const satisfies Record<string, string | null>;

export type Program = keyof typeof PROGRAMS;

export class MissingProgramError extends Error {
  override name = 'MissingProgramError';
}

const found = new Map<string, string>();

/** The program's path, or undefined when it is not an executable on PATH. */
export function findProgram(name: string): string | undefined {
  const dirs = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  const key = `${dirs}\0${name}`;
  const cached = found.get(key);
  if (cached) return cached;
  const candidates = isAbsolute(name) ? [name] : dirs.split(delimiter).map((d) => join(d, name));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      found.set(key, path);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** What to tell a user who lacks `name`. */
export function missingMessage(name: string, purpose?: string): string {
  const pkg = (PROGRAMS as Record<string, string | null>)[name];
  const why = purpose ? ` (needed for ${purpose})` : '';
  if (pkg === null) return `${name} is not on PATH${why}: it comes with Node.js >= 20`;
  if (pkg === undefined) return `${name} is not installed or not executable${why}`;
  return `${name} is not installed or not executable${why}: it comes with the Debian package "${pkg}" (apt-get install ${pkg}, or run scripts/setup.sh)`;
}

/** Throws a MissingProgramError naming every missing program and its package. */
export function requirePrograms(names: readonly Program[], purpose?: string): void {
  const missing = names.filter((n) => !findProgram(n));
  if (missing.length)
    throw new MissingProgramError(missing.map((n) => missingMessage(n, purpose)).join('\n'));
}

/** The same check for a program named at run time (a command line, a config): a clear error. */
export function requireProgram(name: string): void {
  if (name === process.execPath) return;
  if (!findProgram(name)) throw new MissingProgramError(missingMessage(name));
}
