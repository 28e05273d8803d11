// A tiny durable key-value store on segwal: every put/delete is a committed
// transaction, checkpoint() writes a snapshot and trims the log, and a reopen
// rebuilds the map from the snapshot plus the log after its fence.
//
// Run with `npm start` (after `npm install`). Pass a directory to keep the data:
//   node examples/kv-store.mjs /tmp/my-kv
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Wal, codecs } from 'segwal';

class KvStore {
  /** @param {string} dir */
  static async open(dir) {
    const snapshotFile = path.join(dir, 'snapshot.json');
    const snapshot = existsSync(snapshotFile)
      ? JSON.parse(readFileSync(snapshotFile, 'utf8'))
      : { fenceLsn: 0, entries: [] };
    const map = new Map(snapshot.entries);
    const { wal, recovery } = await Wal.open({
      dir: path.join(dir, 'wal'),
      codec: codecs.json(),
      sync: 'per-commit',
      segmentBytes: 64 * 1024,
      checkpointLsn: snapshot.fenceLsn,
      // Each committed transaction after the snapshot's fence, in commit order.
      onReplay: (ops) => ops.forEach((op) => apply(map, op)),
    });
    return { store: new KvStore(wal, map, snapshotFile), recovery, fenceLsn: snapshot.fenceLsn };
  }

  constructor(wal, map, snapshotFile) {
    this.wal = wal;
    this.map = map;
    this.snapshotFile = snapshotFile;
  }

  /** Durable when the promise resolves (per-commit mode). */
  async put(key, value) {
    await this.wal.commit([{ op: 'put', key, value }]);
    this.map.set(key, value);
  }

  async delete(key) {
    await this.wal.commit([{ op: 'delete', key }]);
    this.map.delete(key);
  }

  /** Several operations, all or nothing. */
  async batch(ops) {
    await this.wal.commit(ops);
    ops.forEach((op) => apply(this.map, op));
  }

  /** Snapshot at the fence, then let segwal drop the log the snapshot covers. */
  checkpoint() {
    return this.wal.checkpoint((fenceLsn) => {
      const temporary = `${this.snapshotFile}.tmp`;
      writeFileSync(temporary, JSON.stringify({ fenceLsn, entries: [...this.map] }));
      renameSync(temporary, this.snapshotFile);
    });
  }

  close() {
    return this.wal.close();
  }
}

function apply(map, op) {
  if (op.op === 'put') map.set(op.key, op.value);
  else map.delete(op.key);
}

const keepDir = process.argv[2];
const dir = keepDir ?? mkdtempSync(path.join(tmpdir(), 'segwal-kv-'));
try {
  const first = await KvStore.open(dir);
  const kv = first.store;
  console.log(`opened ${dir}: replayed ${first.recovery.transactions} transactions after fence ${first.fenceLsn}`);

  for (let i = 0; i < 500; i++) await kv.put(`user:${i % 50}`, { visits: i, note: 'x'.repeat(100) });
  await kv.batch([
    { op: 'put', key: 'config:theme', value: 'dark' },
    { op: 'delete', key: 'user:0' },
  ]);
  const fence = await kv.checkpoint();
  console.log(`checkpoint at LSN ${fence}: snapshot written, oldest segment now ${kv.wal.oldestSegmentId}`);

  await kv.put('user:1', { visits: 1000, note: 'after the checkpoint' });
  await kv.delete('user:2');
  const expected = JSON.stringify([...kv.map].sort());
  console.log('status before close:', kv.wal.status());
  await kv.close();

  const again = await KvStore.open(dir);
  const recovered = JSON.stringify([...again.store.map].sort());
  console.log(
    `reopened: snapshot at LSN ${again.fenceLsn} + ${again.recovery.transactions} transactions replayed,` +
      ` ${again.store.map.size} keys, torn tail: ${again.recovery.tornTail === null ? 'none' : 'cut'}`,
  );
  console.log('user:1 =', again.store.map.get('user:1'), '| config:theme =', again.store.map.get('config:theme'));
  await again.store.close();
  if (recovered !== expected) {
    console.error('recovered state differs from the state before close');
    process.exitCode = 1;
  } else {
    console.log('recovered state matches the state before close');
  }
} finally {
  if (keepDir === undefined) rmSync(dir, { recursive: true, force: true });
}
