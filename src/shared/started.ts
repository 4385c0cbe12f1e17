import type { EventEmitter } from 'node:events';

/**
 * Runs `start` (a bind, listen or connect that calls back once done) and resolves then, or
 * rejects with the 'error' the emitter raises first (e.g. EADDRINUSE).
 */
export function started(emitter: EventEmitter, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    emitter.once('error', reject);
    start(() => {
      emitter.off('error', reject);
      resolve();
    });
  });
}
