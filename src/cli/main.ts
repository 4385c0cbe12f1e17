import { buildProgram } from './program.js';

try {
  await (await buildProgram(process.argv)).parseAsync(process.argv);
} catch (err) {
  console.error(`tacmesh: ${(err as Error).message}`);
  // Exit now: a command that failed half-way may hold timers and sockets that would keep
  // the process alive, and a daemon that cannot start must not look alive to its supervisor.
  process.exit(1);
}
