/**
 * VM members: each a QEMU microvm (TCG, or KVM where a guest boots on it) with one
 * virtio-net on the member's tap, booting the Debian kernel and the initramfs that
 * scripts/vm/build-image.sh builds into build/vm/ (busybox: HTTP server, traffic client).
 * QEMU daemonizes and writes its pid to /run/tacmesh/vm/<name>.pid; the pid file, checked
 * against the process's command line, is how the agent finds its VMs again, and the only
 * processes it ever signals.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run } from '../../shared/exec.js';
import { nodeLog as log } from '../../shared/log.js';
import { isAlive } from '../../shared/proc.js';
import { type Program, requirePrograms } from '../../shared/programs.js';

export const VM_RUN_DIR = '/run/tacmesh/vm';
const QEMU = 'qemu-system-x86_64';
const VM_PROGRAMS: Program[] = [QEMU, 'ip'];
/** What the guest's init prints first: the kernel booted and ran it. */
const INIT_MARK = 'tacmesh-vm: init reached';
const PROBE_TIMEOUT_MS = 8000;

/** A VM as the agent wants it; `spec` digests everything that needs a restart to change. */
export interface VmSpec {
  /** The member's namespace-style name, `<prefix>-<node>-<slice>-<member>`. */
  name: string;
  tap: string;
  mac: string;
  address: string;
  gateway?: string;
  memoryMb: number;
  cpus: number;
  /** URLs its client fetches in turn, one every `fetchEverySec`. */
  fetch: string[];
  fetchEverySec: number;
  spec: string;
}

export type VmSpecInput = Omit<VmSpec, 'spec'>;

export function vmSpec(input: VmSpecInput): VmSpec {
  const spec = createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 12);
  return { ...input, spec };
}

/** A VM found running: its pid and the spec it was started with. */
export interface RunningVm {
  pid: number;
  spec: string;
}

const pidFile = (name: string) => `${VM_RUN_DIR}/${name}.pid`;
const consoleFile = (name: string) => `${VM_RUN_DIR}/${name}.console`;

/** The kernel command line the guest's init reads (scripts/vm/init.sh). */
export function kernelArgs(vm: VmSpec): string {
  return [
    'console=ttyS0',
    'quiet',
    'panic=-1',
    ...timekeeping(),
    `tacmesh.spec=${vm.spec}`,
    `tacmesh.addr=${vm.address}`,
    ...(vm.gateway ? [`tacmesh.gw=${vm.gateway}`] : []),
    ...(vm.fetch.length ? [`tacmesh.get=${vm.fetch.join(',')}`, `tacmesh.every=${vm.fetchEverySec}`] : []),
  ].join(' ');
}

/**
 * Emulated, the guest's PIT calibration of the TSC fails when the host is busy, and then it
 * has no clock to boot on: it is told the host's TSC rate instead.
 */
function timekeeping(): string[] {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  return mhz ? [`tsc_early_khz=${Math.round(Number(mhz) * 1000)}`, 'tsc=reliable'] : [];
}

export interface VmImage {
  kernel: string;
  initrd: string;
}

/** build/vm/ of this checkout, where scripts/vm/build-image.sh puts the image. */
export function vmImage(): VmImage {
  const dir = fileURLToPath(new URL('../../../build/vm/', import.meta.url));
  const image = { kernel: `${dir}vmlinuz`, initrd: `${dir}initramfs.img` };
  for (const f of Object.values(image)) {
    try {
      accessSync(f, constants.R_OK);
    } catch {
      throw new Error(
        `VM image ${f} is missing: build it with scripts/vm/build-image.sh (scripts/setup.sh does)`,
      );
    }
  }
  return image;
}

type Accel = 'kvm' | 'tcg';

function accelArgs(accel: Accel): string[] {
  // -cpu host aborts on MSR 0x10a (IA32_ARCH_CAPABILITIES) on these hosts.
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities'] : ['-accel', 'tcg'];
}

function baseArgs(image: VmImage, accel: Accel, memoryMb: number, cpus: number): string[] {
  return [
    '-M',
    'microvm',
    ...accelArgs(accel),
    '-m',
    String(memoryMb),
    '-smp',
    String(cpus),
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-no-reboot',
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
  ];
}

/** The accelerator chosen at this boot (/run is a tmpfs): the probe runs once, not per agent. */
const ACCEL_FILE = `${VM_RUN_DIR}/accel`;

/**
 * KVM where a guest boots on it, TCG otherwise: found by booting a guest whose init only
 * says it ran (on some hosts /dev/kvm opens but a guest hangs after the BIOS).
 */
async function chooseAccel(image: VmImage): Promise<Accel> {
  try {
    const known = readFileSync(ACCEL_FILE, 'utf8').trim();
    if (known === 'kvm' || known === 'tcg') return known;
  } catch {
    // not probed yet
  }
  let kvm = false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    kvm = true;
  } catch {
    // no KVM here
  }
  const accel: Accel = kvm && (await probeKvm(image)) ? 'kvm' : 'tcg';
  mkdirSync(VM_RUN_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(ACCEL_FILE, `${accel}\n`);
  log.info({ accel, kvmDevice: kvm }, 'VM members: accelerator chosen');
  return accel;
}

function probeKvm(image: VmImage): Promise<boolean> {
  return new Promise((resolve) => {
    const args = [
      ...baseArgs(image, 'kvm', 64, 1),
      '-serial',
      'stdio',
      '-append',
      'console=ttyS0 quiet panic=-1 tacmesh.probe',
    ];
    const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(INIT_MARK)) done(true);
    });
    child.on('error', () => done(false));
    child.on('exit', () => done(out.includes(INIT_MARK)));
  });
}

/** The VM's process, if its pid file names a live QEMU that runs it. */
export function runningVm(name: string): RunningVm | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(name), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
  // A pid reused by another process is not the VM.
  const named = argv[argv.indexOf('-name') + 1];
  if (argv.indexOf('-name') < 0 || named !== name) return undefined;
  const spec = /tacmesh\.spec=(\w+)/.exec(argv[argv.indexOf('-append') + 1] ?? '')?.[1] ?? '';
  return { pid, spec };
}

/** Names of the VMs with a pid file whose name starts with `prefix` (running or not). */
export function listVms(prefix: string): string[] {
  try {
    return readdirSync(VM_RUN_DIR)
      .filter((f) => f.endsWith('.pid') && f.startsWith(prefix))
      .map((f) => f.slice(0, -'.pid'.length));
  } catch {
    return [];
  }
}

/** What VM members need on the host: QEMU and the built image (a clear error naming what is missing). */
export function requireVmSupport(): VmImage {
  requirePrograms(VM_PROGRAMS, 'VM members');
  return vmImage();
}

/** Boots the VM in `netns` (the node's namespace, where its tap is); returns once QEMU runs it. */
export async function startVm(vm: VmSpec, netns: string | undefined): Promise<void> {
  const image = requireVmSupport();
  const accel = await chooseAccel(image);
  mkdirSync(VM_RUN_DIR, { recursive: true, mode: 0o700 });
  rmSync(pidFile(vm.name), { force: true });
  writeFileSync(consoleFile(vm.name), '');
  const qemu = [
    QEMU,
    '-name',
    vm.name,
    ...baseArgs(image, accel, vm.memoryMb, vm.cpus),
    '-append',
    kernelArgs(vm),
    '-netdev',
    `tap,id=net0,ifname=${vm.tap},script=no,downscript=no`,
    '-device',
    `virtio-net-device,netdev=net0,mac=${vm.mac}`,
    '-serial',
    `file:${consoleFile(vm.name)}`,
    '-daemonize',
    '-pidfile',
    pidFile(vm.name),
  ];
  // -daemonize: QEMU exits once the VM runs, with an error when it could not start it.
  if (netns) await run('ip', ['netns', 'exec', netns, ...qemu]);
  else await run(QEMU, qemu.slice(1));
}

/** Stops every VM whose name matches (leftovers of a run: `testbed clean`, `down`); their names. */
export async function stopVms(pattern: RegExp): Promise<string[]> {
  const names = listVms('').filter((n) => pattern.test(n));
  for (const name of names) await stopVm(name);
  return names;
}

/** Stops the VM (SIGTERM, then SIGKILL) and removes its files; nothing when it is not running. */
export async function stopVm(name: string): Promise<void> {
  const vm = runningVm(name);
  if (vm) {
    process.kill(vm.pid, 'SIGTERM');
    const deadline = Date.now() + 3000;
    while (isAlive(vm.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(vm.pid)) process.kill(vm.pid, 'SIGKILL');
    while (isAlive(vm.pid)) await new Promise((r) => setTimeout(r, 20));
  }
  rmSync(pidFile(name), { force: true });
  rmSync(consoleFile(name), { force: true });
}
