import { Wal } from 'segwal';

/** segwal through its public API; `sync` decides what an acknowledged append means. */
function segwalDriver(io, sync) {
  return {
    id: `segwal-${io}-${sync}`,
    label: `segwal ${io} (${sync})`,
    async open(dir) {
      const { wal } = await Wal.open({ dir, io, sync });
      return {
        append: (event) => wal.commit([event]),
        appendSync: (event) => void wal.commitSync([event]),
        close: () => wal.close(),
      };
    },
  };
}

export const segwalDrivers = ['native', 'js'].flatMap((io) =>
  ['per-commit', 'group', 'none'].map((sync) => segwalDriver(io, sync)),
);
