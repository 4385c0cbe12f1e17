/**
 * The raw FFI surface of the system libbpf.so.1 (through koffi). Nothing here is tacmesh-specific: object.ts, map.ts,
 * attach.ts and ringbuf.ts build the typed API on top. Pointers are BigInt (koffi 3).
 */
import koffi from 'koffi';
import { libc, loadLibrary } from '../shared/libc.js';
import { bpfLog as log } from '../shared/log.js';

const libbpf = loadLibrary('libbpf.so.1');

/** struct bpf_tc_hook (libbpf.h): { size_t sz; int ifindex; enum attach_point; u32 parent; } */
export const BpfTcHook = koffi.struct('bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32_t',
});
/** struct bpf_tc_opts (libbpf.h): { size_t sz; int prog_fd; u32 flags, prog_id, handle, priority; } */
export const BpfTcOpts = koffi.struct('bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});
// The kernel-facing ABI: a wrong size here would corrupt libbpf's view of the struct.
/** struct bpf_test_run_opts (bpf.h): runs a program on a given packet inside the kernel. */
export const BpfTestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});
if (koffi.sizeof(BpfTestRunOpts) !== 80) throw new Error('bpf_test_run_opts must be 80 bytes');
if (koffi.sizeof(BpfTcHook) !== 24) throw new Error('bpf_tc_hook must be 24 bytes');
if (koffi.sizeof(BpfTcOpts) !== 32) throw new Error('bpf_tc_opts must be 32 bytes');

export interface TcHook {
  sz: number;
  ifindex: number;
  attach_point: number;
  parent: number;
}
export interface TcOpts {
  sz: number;
  prog_fd: number;
  flags: number;
  prog_id: number;
  handle: number;
  priority: number;
}

export interface TestRunOpts {
  sz: number;
  data_in: bigint | null;
  data_out: bigint | null;
  data_size_in: number;
  data_size_out: number;
  ctx_in: bigint | null;
  ctx_out: bigint | null;
  ctx_size_in: number;
  ctx_size_out: number;
  retval: number;
  repeat: number;
  duration: number;
  flags: number;
  cpu: number;
  batch_size: number;
}

type Ptr = bigint | null;

export const ffi = {
  // objects, programs, maps
  openFile: libbpf.func('void *bpf_object__open_file(const char *path, void *opts)') as (
    path: string,
    opts: null,
  ) => Ptr,
  load: libbpf.func('int bpf_object__load(void *obj)') as (obj: bigint) => number,
  close: libbpf.func('void bpf_object__close(void *obj)') as (obj: bigint) => void,
  findProgram: libbpf.func('void *bpf_object__find_program_by_name(void *obj, const char *name)') as (
    obj: bigint,
    name: string,
  ) => Ptr,
  nextProgram: libbpf.func('void *bpf_object__next_program(void *obj, void *prev)') as (
    obj: bigint,
    prev: Ptr,
  ) => Ptr,
  programName: libbpf.func('const char *bpf_program__name(void *prog)') as (prog: bigint) => string,
  programFd: libbpf.func('int bpf_program__fd(void *prog)') as (prog: bigint) => number,
  findMap: libbpf.func('void *bpf_object__find_map_by_name(void *obj, const char *name)') as (
    obj: bigint,
    name: string,
  ) => Ptr,
  nextMap: libbpf.func('void *bpf_object__next_map(void *obj, void *prev)') as (
    obj: bigint,
    prev: Ptr,
  ) => Ptr,
  mapName: libbpf.func('const char *bpf_map__name(void *map)') as (map: bigint) => string,
  mapFd: libbpf.func('int bpf_map__fd(void *map)') as (map: bigint) => number,
  mapType: libbpf.func('int bpf_map__type(void *map)') as (map: bigint) => number,
  mapKeySize: libbpf.func('uint32_t bpf_map__key_size(void *map)') as (map: bigint) => number,
  mapValueSize: libbpf.func('uint32_t bpf_map__value_size(void *map)') as (map: bigint) => number,
  mapMaxEntries: libbpf.func('uint32_t bpf_map__max_entries(void *map)') as (map: bigint) => number,
  mapSetMaxEntries: libbpf.func('int bpf_map__set_max_entries(void *map, uint32_t n)') as (
    map: bigint,
    n: number,
  ) => number,
  numPossibleCpus: libbpf.func('int libbpf_num_possible_cpus()') as () => number,

  // map syscalls on file descriptors; keys and values are Buffers passed by address
  mapLookup: libbpf.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)') as (
    fd: number,
    key: Buffer | null,
    value: Buffer,
  ) => number,
  mapUpdate: libbpf.func(
    'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
  ) as (fd: number, key: Buffer, value: Buffer, flags: number) => number,
  mapDelete: libbpf.func('int bpf_map_delete_elem(int fd, const void *key)') as (
    fd: number,
    key: Buffer,
  ) => number,
  mapNextKey: libbpf.func('int bpf_map_get_next_key(int fd, const void *key, void *next)') as (
    fd: number,
    key: Buffer | null,
    next: Buffer,
  ) => number,
  mapLookupBatch: libbpf.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, void *opts)',
  ) as (
    fd: number,
    inBatch: Buffer | null,
    outBatch: Buffer,
    keys: Buffer,
    values: Buffer,
    count: number[],
    opts: null,
  ) => number,
  mapLookupAndDeleteBatch: libbpf.func(
    'int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, void *opts)',
  ) as (
    fd: number,
    inBatch: Buffer | null,
    outBatch: Buffer,
    keys: Buffer,
    values: Buffer,
    count: number[],
    opts: null,
  ) => number,
  objInfo: libbpf.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)') as (
    fd: number,
    info: Buffer,
    len: number[],
  ) => number,

  // attachment
  tcHookCreate: libbpf.func('int bpf_tc_hook_create(bpf_tc_hook *hook)') as (hook: TcHook) => number,
  tcAttach: libbpf.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)') as (
    hook: TcHook,
    opts: TcOpts,
  ) => number,
  tcDetach: libbpf.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)') as (
    hook: TcHook,
    opts: TcOpts,
  ) => number,
  tcQuery: libbpf.func('int bpf_tc_query(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)') as (
    hook: TcHook,
    opts: TcOpts,
  ) => number,
  progTestRun: libbpf.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)') as (
    progFd: number,
    opts: TestRunOpts,
  ) => number,
  linkCreate: libbpf.func('int bpf_link_create(int prog_fd, int target_fd, int type, void *opts)') as (
    progFd: number,
    targetFd: number,
    type: number,
    opts: null,
  ) => number,
};

// ---- libbpf's own messages -> the project logger, and captured around loads ----

const LIBBPF_WARN = 0;
const LIBBPF_INFO = 1;
let captured: string[] | null = null;
// Big enough for a whole verifier log, whose end is the part that explains a failure.
const printBuf = Buffer.alloc(4 << 20);

const PrintFn = koffi.proto('int libbpf_print_fn(int level, void *fmt, void *ap)');
const printCallback = koffi.register((level: number, fmt: bigint, ap: bigint): number => {
  const n = libc.vsnprintf(printBuf, printBuf.length, fmt, ap);
  const text = printBuf.toString('utf8', 0, Math.max(0, Math.min(n, printBuf.length - 1))).trimEnd();
  if (captured) {
    // The caller owns these: they go into its error, or are dropped when expected.
    // Debug chatter (CO-RE relocations, map creation) would bury the one line that matters.
    if (level <= LIBBPF_INFO) captured.push(tailOfLog(text));
    return 0;
  }
  if (level === LIBBPF_WARN) log.warn({ libbpf: true }, text);
  else if (level === LIBBPF_INFO) log.debug({ libbpf: true }, text);
  else log.trace({ libbpf: true }, text);
  return 0;
}, koffi.pointer(PrintFn));
(libbpf.func('void *libbpf_set_print(libbpf_print_fn *fn)') as (fn: unknown) => unknown)(printCallback);

/** A verifier log can run to thousands of lines; its end says what went wrong. */
const LOG_TAIL_LINES = 40;
function tailOfLog(text: string): string {
  const lines = text.split('\n');
  if (lines.length <= LOG_TAIL_LINES) return text;
  return [
    `... (${lines.length - LOG_TAIL_LINES} lines of the log omitted)`,
    ...lines.slice(-LOG_TAIL_LINES),
  ].join('\n');
}

/** Runs fn and returns what libbpf printed meanwhile (the verifier log on a failed load) instead of logging it. */
export function captureLibbpfLog<T>(fn: () => T): { result: T; messages: string[] } {
  const outer = captured;
  captured = [];
  try {
    const result = fn();
    return { result, messages: captured };
  } finally {
    captured = outer;
  }
}
