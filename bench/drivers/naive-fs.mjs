import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';

/*
 * The log people write by hand: append-only file, one write per event, and
 * (when durable) one fdatasync after it. No framing, no CRC, no preallocation.
 */
function naiveDriver(durable) {
  return {
    id: durable ? 'naive-fs-fdatasync' : 'naive-fs-nosync',
    label: durable ? 'naive node:fs (write+fdatasync)' : 'naive node:fs (write)',
    async open(dir) {
      const file = path.join(dir, 'naive.log');
      const fd = fs.openSync(file, 'a');
      const handle = await fsp.open(file, 'a');
      return {
        async append(event) {
          await handle.write(event);
          if (durable) await handle.datasync();
        },
        appendSync(event) {
          fs.writeSync(fd, event);
          if (durable) fs.fdatasyncSync(fd);
        },
        async close() {
          fs.closeSync(fd);
          await handle.close();
        },
      };
    },
  };
}

export const naiveDrivers = [naiveDriver(true), naiveDriver(false)];
