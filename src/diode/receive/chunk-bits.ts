/** A file's chunks as a bitmap, one bit per chunk: which are here (inbox) or on disk (part file). */

/** True when chunk `i`'s bit is set (false past the end of the bitmap). */
export function hasChunk(bits: Uint8Array, i: number): boolean {
  return ((bits[i >>> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

/** Sets the bits of chunks `first` … `first + count - 1`. */
export function markChunks(bits: Uint8Array, first: number, count = 1): void {
  for (let i = first; i < first + count; i++) bits[i >>> 3]! |= 1 << (i & 7);
}
