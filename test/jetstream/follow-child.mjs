// The follower kill -9 child (test/jetstream/follower-kill.test.ts spawns and SIGKILLs it).
//
//   node follow-child.mjs <dist-entry-url> <replica-dir> <journal> <follow-options-json>
//
// Follows the stream into the replica with followStream until killed. Each
// line goes to <journal> with fs.writeSync (one write(2): a kill cannot take
// a line once written; process.stdout.write to a full pipe is asynchronous).
// The ready line also goes to stdout, so the parent knows when to arm the kill.
//
//   R <appliedCommitLsn>   following: the replica is open, resumed from its own last record
//   A <appliedCommitLsn>   the follower applied every commit at or below it
//
// A failure of the follower ends the child (exit 1, the error on stderr):
// the parent, which only ever kills it, reports it.
import fs from 'node:fs';

const [distEntry, dir, journalPath, optionsJson] = process.argv.slice(2);
const { followStream } = await import(new URL('./jetstream/index.js', distEntry).href);
const journal = fs.openSync(journalPath, 'a');
const say = (line) => fs.writeSync(journal, line + '\n');

const follower = await followStream({ ...JSON.parse(optionsJson), dir });
say(`R ${follower.status().appliedCommitLsn}`);
process.stdout.write(`R ${follower.status().appliedCommitLsn}\n`);
let last = follower.status().appliedCommitLsn;
setInterval(() => {
  const { appliedCommitLsn } = follower.status();
  if (appliedCommitLsn > last) {
    last = appliedCommitLsn;
    say(`A ${appliedCommitLsn}`);
  }
}, 5);
follower.done.then(
  () => {
    process.stderr.write('the follower stopped by itself\n');
    process.exit(1);
  },
  (error) => {
    process.stderr.write(`the follower failed: ${error.code} ${error.message}\n`);
    process.exit(1);
  },
);
