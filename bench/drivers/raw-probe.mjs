import path from 'node:path';
import { createNativeIo } from 'segwal';

// segwal's default segmentBytes (SPEC §4): the probe preallocates and zero-fills in the same unit.
const PREALLOCATION_STEP = 8 << 20;

/*
 * The device's floor: pwrite of the bare event + fdatasync, in C, on a
 * file preallocated in segment-sized steps (fallocate + zero fill, as segwal
 * prepares a segment), with nothing else around it. Nothing durable that
 * preallocates can be much faster.
 */
export const rawProbeDriver = {
  id: 'raw-probe',
  label: 'raw probe (pwrite+fdatasync in C)',
  async open(dir) {
    const io = createNativeIo();
    const fd = io.sync.openSegment(path.join(dir, 'probe.bin'), true);
    let position = 0;
    let allocated = 0;
    const appendSync = (event) => {
      if (position + event.length > allocated) {
        allocated = Math.max(allocated + PREALLOCATION_STEP, position + event.length);
        io.sync.allocate(fd, allocated, true);
        io.sync.datasync(fd);
      }
      io.sync.write(fd, event, position);
      io.sync.datasync(fd);
      position += event.length;
    };
    return {
      append: async (event) => appendSync(event),
      appendSync,
      close: async () => io.sync.close(fd),
    };
  },
};
