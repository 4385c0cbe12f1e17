import { pino } from 'pino';

/** The project logger: JSON lines on stderr, so stdout stays free for command output. */
export const log = pino(
  { name: 'tacmesh', level: process.env.TACMESH_LOG_LEVEL ?? 'info' },
  pino.destination({ fd: 2, sync: true }),
);

export type Logger = typeof log;
