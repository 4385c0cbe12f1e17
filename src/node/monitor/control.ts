/**
 * Run-time control of a running monitor: one command per line (stdin of `tacmesh monitor`,
 * later the tower's config messages go through the same settings). Commands:
 *   sample <N>        emit 1 HTTP event in N
 *   l3|l4|l7 on|off   switch a metric layer
 *   enable|disable <iface>
 */
import type { FlowmonSettings } from './flowmon.js';

export type ControlCommand =
  | { kind: 'settings'; settings: Partial<FlowmonSettings> }
  | { kind: 'iface'; iface: string; enabled: boolean };

export function parseControl(line: string): ControlCommand {
  const [verb = '', arg = '', ...rest] = line.trim().split(/\s+/);
  if (rest.length) throw new Error(`too many words in "${line.trim()}"`);
  switch (verb) {
    case 'sample': {
      const n = Number(arg);
      if (!Number.isInteger(n) || n < 1) throw new Error(`sample needs a whole number >= 1, got "${arg}"`);
      return { kind: 'settings', settings: { sample: n } };
    }
    case 'l3':
    case 'l4':
    case 'l7':
      if (arg !== 'on' && arg !== 'off') throw new Error(`${verb} needs on or off, got "${arg}"`);
      return { kind: 'settings', settings: { [verb]: arg === 'on' } };
    case 'enable':
    case 'disable':
      if (!arg) throw new Error(`${verb} needs an interface name`);
      return { kind: 'iface', iface: arg, enabled: verb === 'enable' };
    default:
      throw new Error(`unknown command "${verb}" (sample <N>, l3|l4|l7 on|off, enable|disable <iface>)`);
  }
}
