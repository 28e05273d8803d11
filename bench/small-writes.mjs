// What a 161-byte write costs on top of zeros written in writes of a given
// size (docs/BENCHMARKS.md, "Zeros in small writes"): the page cache keeps
// pages in folios as large as the writes that made them, and a small write
// into a large folio costs more. Each round zero-fills a 64 MiB file with
// node:fs writes of each size (interleaved), fsyncs it, then times 300,000
// 161-byte writes through the addon, with and without an fdatasync each
// (the fsynced ones: 2,000). `node bench/small-writes.mjs [rounds] [dir]`
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createNativeIo } from 'segwal';
import { median } from './measure.mjs';

const rounds = Number(process.argv[2] ?? 5);
const root = fs.mkdtempSync(path.join(process.argv[3] ?? os.tmpdir(), 'segwal-small-writes-'));
const io = createNativeIo();
const FILE_BYTES = 64 << 20;
const commitBytes = Buffer.alloc(161, 7);
const fillSizes = [16 << 10, 1 << 20];

function zeroFilled(name, fillBytes) {
  const fd = io.sync.openSegment(path.join(root, name), true);
  const zeros = Buffer.alloc(fillBytes);
  const started = process.hrtime.bigint();
  for (let at = 0; at < FILE_BYTES; at += fillBytes) fs.writeSync(fd, zeros, 0, fillBytes, at);
  const fillMsPer8MiB = Number(process.hrtime.bigint() - started) / 1e6 / (FILE_BYTES / (8 << 20));
  io.sync.datasync(fd);
  return { fd, fillMsPer8MiB };
}

function microsPerWrite(fd, count, sync) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) io.sync.appendFrames(fd, commitBytes, i * commitBytes.length, sync);
  return Number(process.hrtime.bigint() - started) / 1000 / count;
}

const results = new Map(fillSizes.map((size) => [size, { fill: [], write: [], durable: [] }]));
try {
  for (let round = 0; round < rounds; round++) {
    for (const size of round % 2 === 0 ? fillSizes : [...fillSizes].reverse()) {
      const result = results.get(size);
      const plain = zeroFilled(`plain-${round}-${size}`, size);
      result.fill.push(plain.fillMsPer8MiB);
      result.write.push(microsPerWrite(plain.fd, 300_000, false));
      io.sync.close(plain.fd);
      const durable = zeroFilled(`durable-${round}-${size}`, size);
      result.durable.push(microsPerWrite(durable.fd, 2_000, true));
      io.sync.close(durable.fd);
      fs.rmSync(path.join(root, `plain-${round}-${size}`));
      fs.rmSync(path.join(root, `durable-${round}-${size}`));
    }
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
for (const [size, { fill, write, durable }] of results) {
  const show = (values) => `${median(values).toFixed(2)} [${values.map((v) => v.toFixed(2)).join(' ')}]`;
  console.log(`zeros in writes of ${size >> 10} KiB: fill ms per 8 MiB ${show(fill)}; 161-byte write µs ${show(write)}; write + fdatasync µs ${show(durable)}`);
}
