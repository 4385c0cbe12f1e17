/** Helpers shared by the kernel tests: proof that a program is (not) in the kernel. */
import { run } from '../../src/shared/exec.js';

export async function progExists(id: number): Promise<boolean> {
  return run('bpftool', ['prog', 'show', 'id', String(id)]).then(
    () => true,
    () => false,
  );
}

/** Polls until the program is gone: the kernel frees it after an RCU grace period. */
export async function waitProgGone(id: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await progExists(id))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Every tcx link bpftool lists for an interface index. */
export async function tcxLinksOn(ifindex: number): Promise<unknown[]> {
  const { stdout } = await run('bpftool', ['-j', 'link', 'list']);
  const links = JSON.parse(stdout || '[]') as { type?: string; ifindex?: number }[];
  return links.filter((l) => l.ifindex === ifindex);
}
