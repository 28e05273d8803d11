import { expect, it } from 'vitest';
import { Unacknowledged } from '../../src/jetstream/unacknowledged.js';

/* The shipper's count of what the stream has not acknowledged: an entry per transaction, or per stretch of a run placed in one message. */

it('counts the transactions and bytes of each entry until a commit at or above its last is acknowledged', () => {
  const unacked = new Unacknowledged();
  unacked.add(9, 300, 1_000, 3); // a stretch of three, the last committed at LSN 9
  unacked.add(12, 40, 1_001, 1);
  unacked.add(21, 120, 1_002, 3);
  expect([unacked.count, unacked.bytes, unacked.oldestReadAt]).toEqual([7, 460, 1_000]);
  unacked.acknowledge(8);
  expect([unacked.count, unacked.bytes]).toEqual([7, 460]);
  unacked.acknowledge(12);
  expect([unacked.count, unacked.bytes, unacked.oldestReadAt]).toEqual([3, 120, 1_002]);
  unacked.acknowledge(21);
  expect([unacked.count, unacked.bytes, unacked.oldestReadAt]).toEqual([0, 0, null]);
  unacked.add(24, 10, 1_003, 1);
  unacked.clear();
  expect([unacked.count, unacked.bytes, unacked.oldestReadAt]).toEqual([0, 0, null]);
});
