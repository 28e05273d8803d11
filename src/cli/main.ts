#!/usr/bin/env node
// The segwal operator CLI: inspect, verify, dump, stats read a log (lock-free);
// ship, follow, restore move it through NATS JetStream (docs/CLI.md).
import fs from 'node:fs';
import { WalError } from '../errors.js';
import { dumpCommand } from './dump.js';
import { followCommand } from './follow.js';
import { inspectCommand } from './inspect.js';
import { restoreCommand } from './restore.js';
import { shipCommand } from './ship.js';
import { statsCommand } from './stats.js';
import { CliError, EXIT_OK, EXIT_USAGE_OR_IO, UsageError, exitCodeOf, parseCommand, type Command, type Output } from './usage.js';
import { verifyCommand } from './verify.js';

const COMMANDS: readonly Command[] = [inspectCommand, verifyCommand, dumpCommand, statsCommand, shipCommand, followCommand, restoreCommand];

const MAIN_HELP = `segwal <command> <dir> [options]
segwal --version

${COMMANDS.map((command) => `  ${command.name.padEnd(8)} ${command.summary}`).join('\n')}

inspect, verify, dump, stats and ship only read the log: they take no lock and
change no file, so they work on a log a live Wal is writing. follow and
restore write a replica in <dir>. \`segwal <command> --help\` for its options.
Exit codes: 0 fine, 1 damage found (or a log and its stream disagree),
2 usage or I/O error.`;

async function runCli(args: string[], out: Output): Promise<number> {
  const [name, ...rest] = args;
  if (name === '--help' || name === '-h' || name === 'help') {
    await out.stdout(`${MAIN_HELP}\n`);
    return EXIT_OK;
  }
  if (name === '--version') {
    await out.stdout(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  if (name === undefined) {
    out.stderr(`segwal: no command given\n\n${MAIN_HELP}\n`);
    return EXIT_USAGE_OR_IO;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) {
    out.stderr(`segwal: unknown ${name.startsWith('-') ? `option ${name}` : `command ${JSON.stringify(name)}`} (see segwal --help)\n`);
    return EXIT_USAGE_OR_IO;
  }
  try {
    const parsed = parseCommand(command, rest);
    if (parsed.help) {
      await out.stdout(`${command.help}\n`);
      return EXIT_OK;
    }
    return await command.run(parsed.dir, parsed.values, out);
  } catch (error) {
    out.stderr(`segwal ${command.name}: ${failureMessage(command, error)}\n`);
    return exitCodeOf(error);
  }
}

/** Why a command could not run, after its name. */
function failureMessage(command: Command, error: unknown): string {
  if (error instanceof UsageError) return `${error.message} (see segwal ${command.name} --help)`;
  if (error instanceof CliError) return error.message;
  if (error instanceof WalError) return `${error.code}: ${error.message}`;
  return String(error);
}

/**
 * The version in package.json, read when asked rather than built in, so it is
 * always the installed package's: package.json sits two levels above this
 * file both in the repository (dist/cli/) and in an installed package
 * (node_modules/segwal/dist/cli/).
 */
function packageVersion(): string {
  const manifest = fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}

/** Writes to stdout, waiting for 'drain' when the pipe is full. */
function writeStdout(text: string): Promise<void> {
  if (process.stdout.write(text)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

// `segwal dump dir | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT_OK);
  process.stderr.write(`segwal: cannot write to stdout: ${error.message}\n`);
  process.exit(EXIT_USAGE_OR_IO);
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: writeStdout,
  stderr: (text) => void process.stderr.write(text),
  stderrIsTty: process.stderr.isTTY === true,
});
