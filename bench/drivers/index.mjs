import { levelDrivers } from './level.mjs';
import { lmdbDrivers } from './lmdb.mjs';
import { naiveDrivers } from './naive-fs.mjs';
import { rawProbeDriver } from './raw-probe.mjs';
import { segwalDrivers } from './segwal.mjs';
import { sqliteDrivers } from './sqlite.mjs';

/** Every driver by id. */
export const DRIVERS = new Map(
  [...segwalDrivers, ...naiveDrivers, rawProbeDriver, ...sqliteDrivers, ...levelDrivers, ...lmdbDrivers].map((driver) => [
    driver.id,
    driver,
  ]),
);
