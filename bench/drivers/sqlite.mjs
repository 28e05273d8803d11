import path from 'node:path';
import Database from 'better-sqlite3';

/** better-sqlite3 in WAL journal mode, one autocommit INSERT per event. */
function sqliteDriver(synchronous) {
  return {
    id: `sqlite-${synchronous.toLowerCase()}`,
    label: `better-sqlite3 (WAL, synchronous ${synchronous})`,
    async open(dir) {
      const db = new Database(path.join(dir, 'log.db'));
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
      db.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
      const insert = db.prepare('INSERT INTO log (data) VALUES (?)');
      const appendSync = (event) => void insert.run(event);
      return {
        append: async (event) => appendSync(event),
        appendSync,
        close: async () => db.close(),
      };
    },
  };
}

export const sqliteDrivers = [sqliteDriver('FULL'), sqliteDriver('OFF')];
