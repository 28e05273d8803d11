// A child process that commits a few transactions and marks each
// acknowledgement with a write(2) the parent can see in a syscall trace or an
// fs hook (test/fsync-before-ack.test.ts).
//
//   node ack-child.mjs <dist-entry-url> <dir> <io> <sync-mode> <api> <commits>
//
// <sync-mode> is 'per-commit' or 'group' (a group interval of a minute: no
// timer fsync during the run). In group mode the async API commits with
// { durable: true } and the blocking API calls syncSync() after commitSync():
// the two ways to wait for durability there.
//
// Around each commit the child writes a marker line to /dev/null with
// fs.writeSync, i.e. one write(2) on the main thread: "segwal-commit <n>\n"
// just before calling commit, "segwal-ack <n>\n" only once it has resolved
// (or commitSync has returned).
import fs from 'node:fs';

const [distEntry, dir, io, mode, api, commitsArg] = process.argv.slice(2);
const { Wal } = await import(distEntry);
const commits = Number(commitsArg);
const sync = mode === 'group' ? { mode: 'group', intervalMs: 60_000 } : mode;
const options = { dir, io, sync, segmentBytes: 64 * 1024 };
const markerFd = fs.openSync('/dev/null', 'w');
const mark = (what, n) => fs.writeSync(markerFd, `segwal-${what} ${n}\n`);

if (api === 'async') {
  const { wal } = await Wal.open(options);
  for (let n = 1; n <= commits; n++) {
    mark('commit', n);
    await wal.commit([Buffer.from(`event ${n}`)], mode === 'group' ? { durable: true } : {});
    mark('ack', n);
  }
  await wal.close();
} else {
  const { wal } = Wal.openSync(options);
  for (let n = 1; n <= commits; n++) {
    mark('commit', n);
    wal.commitSync([Buffer.from(`event ${n}`)]);
    if (mode === 'group') wal.syncSync();
    mark('ack', n);
  }
  wal.closeSync();
}
