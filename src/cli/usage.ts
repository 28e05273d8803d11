import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes (docs/CLI.md). */
export const EXIT_OK = 0;
export const EXIT_DAMAGE = 1;
export const EXIT_USAGE_OR_IO = 2;

/** A command line that cannot be run; printed with the command's help, exit 2. */
export class UsageError extends Error {}

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

/** Parses `args` for `command`: exactly one directory, its options, and `--help`. */
export function parseCommand(command: Command, args: string[]): { help: true } | { help: false; dir: string; values: Record<string, unknown> } {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { ...command.options, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help === true) return { help: true };
  if (parsed.positionals.length !== 1) throw new UsageError(`segwal ${command.name} takes one log directory`);
  return { help: false, dir: parsed.positionals[0] as string, values: parsed.values };
}

/** An LSN option: an integer from `min` (1 unless 0 means something) up to 2^53−1. */
export function lsnOption(values: Record<string, unknown>, name: string, min: 0 | 1 = 1): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(String(raw)) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`--${name} takes an LSN (an integer from ${min} to 2^53-1), not ${String(raw)}`);
  }
  return value;
}
