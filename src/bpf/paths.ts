import { fileURLToPath } from 'node:url';

/** Where `make -C bpf` puts compiled objects; the same relative path from src/ and dist/. */
export function objectPath(program: string): string {
  return fileURLToPath(new URL(`../../bpf/.output/${program}.bpf.o`, import.meta.url));
}
