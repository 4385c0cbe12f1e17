/** An aggregator for the in-process tests: no copies, fast, `send` sees every datagram. */
import { Aggregator, type AggregatorOptions } from '../../../src/diode/send/aggregator.js';
import { CopyPolicy } from '../../../src/diode/send/copies.js';

export function testAggregator(
  send: AggregatorOptions['send'],
  options: Partial<AggregatorOptions> = {},
): Aggregator {
  return new Aggregator({
    epoch: 1,
    rateBitsPerSecond: 1e9,
    datagramBytes: 1472,
    queueBytes: 1 << 22,
    copyPolicy: new CopyPolicy({ high: [], low: [] }),
    everyMs: 10,
    spreadMs: 0,
    send,
    ...options,
  });
}
