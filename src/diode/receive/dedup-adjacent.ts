/**
 * The paper's duplicate filter (Algorithm 1, Table 3), kept for comparison: compare the
 * length of a captured datagram with the previous one; if equal, XOR the two byte by byte;
 * all zero means a duplicate. It only catches a copy that arrives right after its original.
 *
 * One adaptation: our copies carry a copy number (header byte 6), so that byte is left out
 * of the XOR; everything else a copy carries is identical to its original.
 */

const COPY_BYTE = 6;

export class AdjacentDuplicateFilter {
  private previous: Buffer | undefined;

  /** True when `datagram` is a duplicate of the datagram captured just before it. */
  isDuplicate(datagram: Buffer): boolean {
    const p2 = this.previous;
    this.previous = datagram;
    if (!p2 || p2.length !== datagram.length) return false; // lines 5-7: lengths differ
    let p3 = 0; // line 8: P3 = P1 XOR P2, reduced with OR: any non-zero bit makes it non-zero
    for (let i = 0; i < datagram.length; i++) {
      if (i !== COPY_BYTE) p3 |= datagram[i]! ^ p2[i]!;
    }
    return p3 === 0;
  }
}
