/**
 * When a page asks the API again: at once when the window or filter changes, and in live
 * mode every `everyMs` — never two at a time, so a slow tower slows the page's refresh
 * instead of piling requests up. Errors are shown by the page, not thrown.
 */
import { state } from './state.js';

export function refresher(
  load: () => Promise<void>,
  opts: { everyMs: number; onError: (err: Error) => void; alsoWhenNotLive?: boolean },
): () => void {
  let running = false;
  let again = false;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await load();
    } catch (err) {
      if (!stopped) opts.onError(err as Error);
    } finally {
      running = false;
    }
    if (again) {
      again = false;
      void run();
    }
  };
  const off = state.on(() => void run());
  const timer = setInterval(() => {
    if (state.live || opts.alsoWhenNotLive) void run();
  }, opts.everyMs);
  void run();
  return () => {
    stopped = true;
    off();
    clearInterval(timer);
  };
}
