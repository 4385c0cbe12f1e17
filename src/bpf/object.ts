/**
 * Typed access to an eBPF object file: open, load, find programs and maps, close.
 * Errors carry the errno name and, for loads, the libbpf/verifier log.
 */
import { existsSync } from 'node:fs';
import koffi from 'koffi';
import { SysError } from '../shared/errno.js';
import { clearErrno, errno } from '../shared/libc.js';
import { bpfLog as log } from '../shared/log.js';
import { captureLibbpfLog, ffi, type TestRunOpts } from './libbpf.js';
import { BpfMap } from './map.js';

export class BpfProgram {
  constructor(
    readonly name: string,
    readonly fd: number,
  ) {}

  /**
   * Runs the program in the kernel on `packet` (BPF_PROG_TEST_RUN), `repeat` times; returns
   * its verdict and the kernel's average time per run. Maps are updated as by real traffic.
   */
  testRun(packet: Buffer, repeat = 1): { retval: number; nsPerRun: number } {
    const data = koffi.alloc('uint8_t', packet.length);
    try {
      Buffer.from(koffi.view(data, packet.length)).set(packet);
      const opts: TestRunOpts = {
        sz: 80,
        data_in: data,
        data_out: null,
        data_size_in: packet.length,
        data_size_out: 0,
        ctx_in: null,
        ctx_out: null,
        ctx_size_in: 0,
        ctx_size_out: 0,
        retval: 0,
        repeat,
        duration: 0,
        flags: 0,
        cpu: 0,
        batch_size: 0,
      };
      const rc = ffi.progTestRun(this.fd, opts);
      if (rc < 0) throw new SysError(`test run of ${this.name}`, rc);
      return { retval: opts.retval, nsPerRun: opts.duration };
    } finally {
      koffi.free(data);
    }
  }

  /** The kernel's id of the loaded program (what `bpftool prog` and `tc filter show` print). */
  get id(): number {
    const info = Buffer.alloc(16);
    const len = [info.length];
    const rc = ffi.objInfo(this.fd, info, len);
    if (rc < 0) throw new SysError(`bpf_obj_get_info_by_fd(${this.name})`, rc);
    return info.readUInt32LE(4);
  }
}

export interface OpenOptions {
  /** Resize maps before load, by map name (e.g. a flow table sized by config). */
  maxEntries?: Record<string, number>;
}

export class BpfObject {
  private handle: bigint | null;
  private readonly maps = new Map<string, BpfMap>();
  private readonly programs = new Map<string, BpfProgram>();

  private constructor(
    readonly path: string,
    handle: bigint,
  ) {
    this.handle = handle;
  }

  /** Opens and loads an object file into the kernel. */
  static load(path: string, options: OpenOptions = {}): BpfObject {
    if (!existsSync(path)) {
      throw new Error(`eBPF object ${path} not found (build it with \`npm run build:bpf\`)`);
    }
    clearErrno();
    const { result: handle, messages: openLog } = captureLibbpfLog(() => ffi.openFile(path, null));
    if (!handle) throw new SysError(`bpf_object__open_file(${path})`, errno(), openLog.join('\n'));
    const obj = new BpfObject(path, handle);
    try {
      for (const [name, n] of Object.entries(options.maxEntries ?? {})) {
        const map = ffi.findMap(handle, name);
        if (!map) throw new Error(`${path}: no map named ${name} to resize`);
        const rc = ffi.mapSetMaxEntries(map, n);
        if (rc < 0) throw new SysError(`bpf_map__set_max_entries(${name}, ${n})`, rc);
      }
      const { result: rc, messages } = captureLibbpfLog(() => ffi.load(handle));
      if (rc < 0) throw new SysError(`bpf_object__load(${path})`, rc, messages.join('\n'));
      if (messages.length) log.debug({ path, libbpf: messages }, 'eBPF object loaded');
      obj.index();
      return obj;
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  private index(): void {
    const handle = this.live();
    for (let p = ffi.nextProgram(handle, null); p; p = ffi.nextProgram(handle, p)) {
      const name = ffi.programName(p);
      this.programs.set(name, new BpfProgram(name, ffi.programFd(p)));
    }
    for (let m = ffi.nextMap(handle, null); m; m = ffi.nextMap(handle, m)) {
      const name = ffi.mapName(m);
      this.maps.set(
        name,
        new BpfMap(
          name,
          ffi.mapFd(m),
          ffi.mapType(m),
          ffi.mapKeySize(m),
          ffi.mapValueSize(m),
          ffi.mapMaxEntries(m),
        ),
      );
    }
  }

  private live(): bigint {
    if (this.handle === null) throw new Error(`${this.path}: object is closed`);
    return this.handle;
  }

  program(name: string): BpfProgram {
    this.live();
    const prog = this.programs.get(name);
    if (!prog)
      throw new Error(
        `${this.path}: no program named ${name} (has: ${[...this.programs.keys()].join(', ')})`,
      );
    return prog;
  }

  map(name: string): BpfMap {
    this.live();
    const map = this.maps.get(name);
    if (!map)
      throw new Error(`${this.path}: no map named ${name} (has: ${[...this.maps.keys()].join(', ')})`);
    return map;
  }

  /** The names of the object's maps (global data sections show as e.g. `flowmon.bss`). */
  mapNames(): string[] {
    this.live();
    return [...this.maps.keys()];
  }

  /** Unloads the object. Programs stay in the kernel only while something (a link, a tc filter) holds them. */
  close(): void {
    if (this.handle === null) return;
    ffi.close(this.handle);
    this.handle = null;
  }
}
