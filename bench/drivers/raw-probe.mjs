import path from 'node:path';
import { createNativeIo } from 'segwal';

const PREALLOCATION_STEP = 64 << 20;

/*
 * The device's floor: pwrite of the bare event + fdatasync, in C, on a
 * file preallocated in 64 MiB steps (as segwal preallocates segments), with
 * nothing else around it. Nothing durable can be much faster.
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
        io.sync.allocate(fd, allocated);
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
