import { ClassicLevel } from 'classic-level';

/** LevelDB through classic-level: one put per event under an increasing key. */
function levelDriver(sync) {
  return {
    id: sync ? 'level-sync' : 'level-nosync',
    label: `classic-level (sync ${sync})`,
    async open(dir) {
      const db = new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      let sequence = 0n;
      const key = () => {
        const bytes = Buffer.allocUnsafe(8);
        bytes.writeBigUInt64BE(sequence++);
        return bytes;
      };
      return {
        append: (event) => db.put(key(), event, { sync }),
        close: () => db.close(),
      };
    },
  };
}

export const levelDrivers = [levelDriver(true), levelDriver(false)];
