/** The few libc calls tacmesh makes directly (through koffi): mmap, setns, errno and friends. */
import koffi from 'koffi';

export function loadLibrary(name: string) {
  try {
    return koffi.load(name);
  } catch (err) {
    throw new Error(
      `cannot load ${name}: ${(err as Error).message} (install it with \`bash scripts/setup.sh\`)`,
    );
  }
}

const c = loadLibrary('libc.so.6');

export const libc = {
  closeFd: c.func('int close(int fd)') as (fd: number) => number,
  mmap: c.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)') as (
    addr: null,
    len: number,
    prot: number,
    flags: number,
    fd: number,
    off: number,
  ) => bigint,
  munmap: c.func('int munmap(void *addr, size_t len)') as (addr: bigint, len: number) => number,
  setns: c.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
  clockGettime: c.func('int clock_gettime(int clock, void *ts)') as (clock: number, ts: Buffer) => number,
  sendto: c.func('long sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t alen)') as (
    fd: number,
    buf: Buffer,
    len: number,
    flags: number,
    addr: Buffer,
    alen: number,
  ) => number,
  ifNameToIndex: c.func('unsigned int if_nametoindex(const char *name)') as (name: string) => number,
  pageSize: (c.func('long sysconf(int name)') as (name: number) => number)(30 /* _SC_PAGESIZE */),
  vsnprintf: c.func('int vsnprintf(void *buf, size_t n, void *fmt, void *ap)') as (
    buf: Buffer,
    n: number,
    fmt: bigint,
    ap: bigint,
  ) => number,
};

export const errno = (): number => koffi.errno();
export const MAP_FAILED = 0xffffffffffffffffn;

/** Sets errno to 0 before a call whose failure is signalled by NULL, so a stale value never leaks in. */
export function clearErrno(): void {
  koffi.errno(0);
}

/** A view over unmanaged memory (mmapped ring buffers). */
export function view(ptr: bigint, len: number): ArrayBuffer {
  return koffi.view(ptr, len);
}
