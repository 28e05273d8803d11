import { open } from 'lmdb';

/** lmdb-js: async puts are batched into one transaction per turn; `noSync` skips its fsync. */
function lmdbDriver(noSync) {
  return {
    id: noSync ? 'lmdb-nosync' : 'lmdb',
    label: noSync ? 'lmdb (noSync)' : 'lmdb (default, synced)',
    async open(dir) {
      const db = open({ path: dir, noSync, compression: false, encoding: 'binary' });
      let sequence = 0;
      return {
        append: (event) => db.put(sequence++, event),
        appendSync: (event) => void db.putSync(sequence++, event),
        close: () => db.close(),
      };
    },
  };
}

export const lmdbDrivers = [lmdbDriver(false), lmdbDriver(true)];
