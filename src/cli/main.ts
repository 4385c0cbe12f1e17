import { buildProgram } from './program.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  console.error(`tacmesh: ${(err as Error).message}`);
  process.exitCode = 1;
}
