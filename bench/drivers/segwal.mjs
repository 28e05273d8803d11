import { Wal } from 'segwal';

/**
 * segwal through its public API; `sync` decides what an acknowledged append
 * means. `metrics: false` only to measure what keeping wal.metrics() costs.
 */
function segwalDriver(io, sync, { metrics = true } = {}) {
  return {
    id: `segwal-${io}-${sync}${metrics ? '' : '-no-metrics'}`,
    label: `segwal ${io} (${sync}${metrics ? '' : ', metrics off'})`,
    async open(dir) {
      const { wal } = await Wal.open({ dir, io, sync, metrics });
      return {
        append: (event) => wal.commit([event]),
        appendSync: (event) => void wal.commitSync([event]),
        close: () => wal.close(),
      };
    },
  };
}

/**
 * commitSync in per-commit mode, awaited like the others: the write and the
 * fdatasync on the calling thread, as better-sqlite3 and the raw probe do.
 */
const blockingDriver = {
  id: 'segwal-native-per-commit-blocking',
  label: 'segwal native (per-commit, commitSync)',
  async open(dir) {
    const { wal } = await Wal.open({ dir, io: 'native', sync: 'per-commit' });
    const appendSync = (event) => void wal.commitSync([event]);
    return {
      append: async (event) => appendSync(event),
      appendSync,
      close: () => wal.close(),
    };
  },
};

export const segwalDrivers = [
  ...['native', 'js'].flatMap((io) => ['per-commit', 'group', 'none'].map((sync) => segwalDriver(io, sync))),
  segwalDriver('native', 'per-commit', { metrics: false }),
  segwalDriver('native', 'group', { metrics: false }),
  blockingDriver,
];
