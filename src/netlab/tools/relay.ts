/** relay <listen host:port> <target host:port>: the testbed's path from the host's 127.0.0.1 to the tower. */
import { startRelay } from '../../shared/relay.js';

const [listen = '', target = ''] = process.argv.slice(2);
const relay = await startRelay(target, { listen });
console.log(`relay ${relay.address} -> ${target}`);
process.on('SIGTERM', () => void relay.close().then(() => process.exit(0)));
