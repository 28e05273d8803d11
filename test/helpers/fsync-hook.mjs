// Preloaded with `node --import` (test/fsync-before-ack.test.ts), before
// segwal loads: the js backend promisifies fs.fdatasync when its module is
// evaluated, so the wrapper must be in place by then.
//
// It records, in order, what the process asks of node:fs for writes and
// fsyncs, and the marker lines ack-child.mjs writes:
//   { kind: 'write', path }               an fs.write (callback) or fs.writeSync returned
//   { kind: 'fsync-start', id, path }     fs.fdatasync / fs.fdatasyncSync called
//   { kind: 'fsync-end', id, path }       ... returned: for fs.fdatasync, just before its
//                                         callback runs, SEGWAL_FSYNC_DELAY_MS after the
//                                         syscall finished
//   { kind: 'marker', what, n }           "segwal-commit <n>" / "segwal-ack <n>" written
// and writes them as JSON to SEGWAL_FS_LOG when the process exits. Paths come
// from /proc/self/fd, as the kernel names the file.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const logPath = process.env.SEGWAL_FS_LOG;
const delayMs = Number(process.env.SEGWAL_FSYNC_DELAY_MS ?? 0);
const events = [];
let recording = true;
let nextId = 1;
const MARKER = /^segwal-(commit|ack) (\d+)\n$/;

function pathOf(fd) {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `fd ${fd}`;
  }
}

function record(event) {
  if (recording) events.push(event);
}

const original = { write: fs.write, writeSync: fs.writeSync, fdatasync: fs.fdatasync, fdatasyncSync: fs.fdatasyncSync };

fs.write = function write(fd, ...args) {
  const callback = args.pop();
  const path = pathOf(fd);
  return original.write.call(fs, fd, ...args, (error, ...results) => {
    if (!error) record({ kind: 'write', path });
    callback(error, ...results);
  });
};

fs.writeSync = function writeSync(fd, data, ...args) {
  const path = pathOf(fd);
  const written = original.writeSync.call(fs, fd, data, ...args);
  const marker = typeof data === 'string' && path === '/dev/null' ? MARKER.exec(data) : null;
  record(marker === null ? { kind: 'write', path } : { kind: 'marker', what: marker[1], n: Number(marker[2]) });
  return written;
};

fs.fdatasync = function fdatasync(fd, callback) {
  const id = `hook-${nextId++}`;
  const path = pathOf(fd);
  record({ kind: 'fsync-start', id, path });
  return original.fdatasync.call(fs, fd, (error) => {
    setTimeout(() => {
      if (!error) record({ kind: 'fsync-end', id, path });
      callback(error);
    }, delayMs);
  });
};

fs.fdatasyncSync = function fdatasyncSync(fd) {
  const id = `hook-${nextId++}`;
  const path = pathOf(fd);
  record({ kind: 'fsync-start', id, path });
  original.fdatasyncSync.call(fs, fd);
  record({ kind: 'fsync-end', id, path });
};

syncBuiltinESMExports();

process.on('exit', () => {
  recording = false;
  if (logPath !== undefined) original.writeSync.call(fs, fs.openSync(logPath, 'w'), JSON.stringify(events));
});
