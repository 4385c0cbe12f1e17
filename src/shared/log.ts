import { pino } from 'pino';

/**
 * The project logger: JSON lines on stderr, so stdout stays free for command output. Each
 * component logs through its own child, so every line says who wrote it (`component`). An
 * error goes in as the Error itself, `{ err }`: pino keeps its type, message and stack.
 */
export const log = pino(
  { name: 'tacmesh', level: process.env.TACMESH_LOG_LEVEL ?? 'info' },
  pino.destination({ fd: 2, sync: true }),
);

export type Logger = typeof log;

export const bpfLog = log.child({ component: 'bpf' });
export const nodeLog = log.child({ component: 'node' });
export const towerLog = log.child({ component: 'tower' });
export const diodeLog = log.child({ component: 'diode' });
