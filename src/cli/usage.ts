import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LOG_DAMAGE_CODES, WalError, type WalErrorCode } from '../errors.js';

/** Exit codes (docs/CLI.md). */
export const EXIT_OK = 0;
export const EXIT_DAMAGE = 1;
export const EXIT_USAGE_OR_IO = 2;

/** A command that cannot run, said in the CLI's words: one line on stderr; exit 2. */
export class CliError extends Error {}

/** A command line that cannot be run: one line, pointing to the command's --help; exit 2. */
export class UsageError extends CliError {}

export interface Command {
  name: string;
  summary: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(dir: string, values: Record<string, unknown>, out: Output): Promise<number>;
}

export interface Output {
  /** Resolves once the text is taken (after a 'drain' when the pipe is full), so a long dump stays in bounded memory. */
  stdout: (text: string) => Promise<void>;
  stderr: (text: string) => void;
  stderrIsTty: boolean;
}

/**
 * Parses `args` for `command`: exactly one directory, its options, and `--help`.
 * parseArgs runs lenient (strict: false) so that every mistake is found here,
 * from its tokens, and worded in the CLI's words rather than parseArgs's.
 */
export function parseCommand(command: Command, args: string[]): { help: true } | { help: false; dir: string; values: Record<string, unknown> } {
  const options: Command['options'] = { ...command.options, help: { type: 'boolean', short: 'h' } };
  const { values, positionals, tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  if (values.help === true) return { help: true };
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const type = options[token.name]?.type;
    if (type === undefined) throw new UsageError(`unknown option ${token.rawName}`);
    if (type === 'boolean' && token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`);
    // Lenient parsing takes `--from --json` as --from "--json"; no value of ours starts with "-", so that is a missing value.
    if (type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('-')))) {
      throw new UsageError(`${token.rawName} needs a value`);
    }
  }
  if (positionals.length !== 1) {
    throw new UsageError(`expected one log directory, got ${positionals.length === 0 ? 'none' : `${positionals.length}: ${positionals.join(', ')}`}`);
  }
  return { help: false, dir: positionals[0] as string, values };
}

/** An LSN option: an integer from `min` (1 unless 0 means something) up to 2^53−1, or one of `words`, returned as given. */
export function lsnOption<Word extends string = never>(
  values: Record<string, unknown>,
  name: string,
  min: 0 | 1 = 1,
  words: readonly Word[] = [],
): number | Word | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (words.includes(raw as Word)) return raw as Word;
  const value = wholeNumber(raw, min);
  if (value === null) {
    throw new UsageError(`--${name} takes an LSN (an integer from ${min} to 2^53-1)${words.map((word) => ` or ${word}`).join('')}, not ${String(raw)}`);
  }
  return value;
}

/**
 * A count option (`--window N`, `--status-ms MS`): an integer from `min`.
 * Only its form is checked here; an upper bound is the library's to check.
 */
export function integerOption(values: Record<string, unknown>, name: string, min: 0 | 1 = 1): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = wholeNumber(raw, min);
  if (value === null) throw new UsageError(`--${name} takes an integer from ${min}, not ${String(raw)}`);
  return value;
}

/** `raw` as an integer from `min` up to 2^53−1, written in digits only; null when it is not one. */
function wholeNumber(raw: unknown, min: number): number | null {
  const value = Number(raw);
  return /^\d+$/.test(String(raw)) && Number.isSafeInteger(value) && value >= min ? value : null;
}

/**
 * Failures that say a log and its stream disagree (docs/REPLICATION.md,
 * "Failure modes"): another log, a different history, a damaged message; and
 * a local log (or replica) that open refuses as damaged. Running again cannot
 * mend them, so ship, follow and restore exit with EXIT_DAMAGE for them, and
 * keep 2 for what may pass (a server away, an I/O error): a service manager
 * told not to restart on 1 leaves them to a person instead of a restart loop.
 */
const DAMAGE_CODES: ReadonlySet<WalErrorCode> = new Set([
  'WAL_REPLICATION_DIVERGED',
  'WAL_REPLICATION_CONFLICT',
  'WAL_REPLICATION_MALFORMED',
  ...LOG_DAMAGE_CODES,
]);

/** The exit code of a command that stopped on `error`. */
export function exitCodeOf(error: unknown): number {
  return error instanceof WalError && DAMAGE_CODES.has(error.code) ? EXIT_DAMAGE : EXIT_USAGE_OR_IO;
}
