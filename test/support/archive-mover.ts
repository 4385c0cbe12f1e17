/**
 * A tower's maintenance pass alone, in a process of its own, for a test to kill with
 * SIGKILL while it moves days into the archive:
 *   archive-mover.ts <store path> <now ms>
 */
import { DuckStore } from '../../src/tower/store/duckdb.js';

const [path = '', now = '0'] = process.argv.slice(2);
const store = await DuckStore.open(path, { retentionDays: 7, rollupRetentionDays: 90, archiveDays: 30 });
await store.maintain(Number(now));
store.close();
