/**
 * Attaches tc programs to an interface's ingress or egress.
 *
 * tcx links (kernel >= 6.6) are preferred: the link lives as long as its file descriptor,
 * so a loader that dies - even by SIGKILL - leaves nothing attached. Where tcx is missing,
 * a tc clsact filter with a fixed handle/priority is installed with REPLACE; that one
 * outlives the process and must be detached explicitly.
 */
import { SysError } from '../shared/errno.js';
import { libc } from '../shared/libc.js';
import { inNetns } from '../shared/netns.js';
import { captureLibbpfLog, ffi, type TcHook, type TcOpts } from './libbpf.js';
import type { BpfProgram } from './object.js';

export type Direction = 'ingress' | 'egress';
export type AttachMode = 'tcx' | 'tc';

const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;
const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;
const EEXIST = 17;
const ENOENT = 2;

/** Handle and priority of tacmesh's tc filters; fixed so REPLACE finds and swaps our own. */
export const TC_HANDLE = 0x7a6d;
export const TC_PRIORITY = 0x7a6d;

export interface AttachOptions {
  /** Network namespace that owns the interface (default: the current one). */
  netns?: string;
  /** Force a mode; by default tcx, falling back to tc when the kernel lacks it. */
  mode?: AttachMode;
  /** tc mode only: filter priority, so several tacmesh programs can share a hook. */
  priority?: number;
}

export interface Attachment {
  readonly iface: string;
  readonly ifindex: number;
  readonly direction: Direction;
  readonly mode: AttachMode;
  readonly netns: string | undefined;
  /** Removes the program from the hook; idempotent. */
  detach(): void;
}

export function ifindexOf(iface: string, netns?: string): number {
  const index = inNetns(netns, () => libc.ifNameToIndex(iface));
  if (!index) throw new Error(`no interface named ${iface}${netns ? ` in network namespace ${netns}` : ''}`);
  return index;
}

let tcxUnsupported = false;

export function attach(
  prog: BpfProgram,
  iface: string,
  direction: Direction,
  options: AttachOptions = {},
): Attachment {
  const ifindex = ifindexOf(iface, options.netns);
  const mode = options.mode ?? (tcxUnsupported ? 'tc' : 'tcx');
  if (mode === 'tcx') {
    const fd = inNetns(options.netns, () =>
      ffi.linkCreate(prog.fd, ifindex, direction === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, null),
    );
    if (fd >= 0) return tcxAttachment(fd, iface, ifindex, direction, options.netns);
    if (options.mode === 'tcx') throw new SysError(`tcx attach of ${prog.name} to ${iface} ${direction}`, fd);
    tcxUnsupported = true; // EINVAL/EOPNOTSUPP on kernels before 6.6: fall back for good
  }
  return tcAttach(prog, iface, ifindex, direction, options);
}

function tcxAttachment(
  fd: number,
  iface: string,
  ifindex: number,
  direction: Direction,
  netns: string | undefined,
): Attachment {
  let open = true;
  return {
    iface,
    ifindex,
    direction,
    mode: 'tcx',
    netns,
    detach() {
      if (!open) return;
      open = false;
      libc.closeFd(fd);
    },
  };
}

function hookFor(ifindex: number, direction: Direction): TcHook {
  return {
    sz: 24,
    ifindex,
    attach_point: direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS,
    parent: 0,
  };
}

function tcAttach(
  prog: BpfProgram,
  iface: string,
  ifindex: number,
  direction: Direction,
  options: AttachOptions,
): Attachment {
  const hook = hookFor(ifindex, direction);
  const priority = options.priority ?? TC_PRIORITY;
  inNetns(options.netns, () => {
    // clsact may already exist (ours from before, or someone else's): share it, never destroy it.
    const { result: created, messages } = captureLibbpfLog(() => ffi.tcHookCreate(hook));
    if (created < 0 && created !== -EEXIST)
      throw new SysError(`clsact on ${iface}`, created, messages.join('\n'));
    const opts: TcOpts = {
      sz: 32,
      prog_fd: prog.fd,
      flags: BPF_TC_F_REPLACE,
      prog_id: 0,
      handle: TC_HANDLE,
      priority,
    };
    const { result: rc, messages: attachLog } = captureLibbpfLog(() => ffi.tcAttach(hook, opts));
    if (rc < 0)
      throw new SysError(`tc attach of ${prog.name} to ${iface} ${direction}`, rc, attachLog.join('\n'));
  });
  let attached = true;
  return {
    iface,
    ifindex,
    direction,
    mode: 'tc',
    netns: options.netns,
    detach() {
      if (!attached) return;
      attached = false;
      detachTcFilter(ifindex, direction, { netns: options.netns, priority });
    },
  };
}

/** Removes tacmesh's tc filter from a hook (also one a dead process left); absent is fine. */
export function detachTcFilter(
  ifindex: number,
  direction: Direction,
  options: { netns?: string | undefined; priority?: number } = {},
): void {
  const hook = hookFor(ifindex, direction);
  // libbpf requires prog_fd, prog_id and flags to be zero on detach.
  const opts: TcOpts = {
    sz: 32,
    prog_fd: 0,
    flags: 0,
    prog_id: 0,
    handle: TC_HANDLE,
    priority: options.priority ?? TC_PRIORITY,
  };
  const { result: rc, messages } = captureLibbpfLog(() =>
    inNetns(options.netns, () => ffi.tcDetach(hook, opts)),
  );
  if (rc < 0 && rc !== -ENOENT && rc !== -22 /* EINVAL: no clsact on the device */) {
    throw new SysError(`tc detach from ifindex ${ifindex} ${direction}`, rc, messages.join('\n'));
  }
}
