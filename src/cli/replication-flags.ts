import { WalError } from '../errors.js';
import { UsageError, integerOption, type Command } from './usage.js';

/*
 * The flags ship, follow and restore share. Each flag is the option of the
 * same name in segwal/jetstream, in kebab case (`--max-message-bytes` is
 * `maxMessageBytes`), and the library checks the values' ranges: one set of
 * rules, worded here in flags.
 */

/** Where the stream is: every one of the three commands takes them. */
export const STREAM_FLAGS: Command['options'] = {
  servers: { type: 'string' },
  stream: { type: 'string' },
  subject: { type: 'string' },
};

/** The status lines of the commands that run until stopped. */
export const STATUS_FLAGS: Command['options'] = {
  'status-ms': { type: 'string' },
  json: { type: 'boolean' },
};

/** Between two status lines, unless --status-ms says otherwise: often enough to watch, rare enough for a log file. */
const DEFAULT_STATUS_MS = 5_000;

export interface StreamFlags {
  servers: string[];
  stream: string;
  subject: string | undefined;
}

export function streamFlags(values: Record<string, unknown>): StreamFlags {
  const list = required(values, 'servers');
  const servers = list.split(',').map((server) => server.trim());
  if (servers.includes('')) throw new UsageError(`--servers takes URL[,URL…], not ${list}`);
  return { servers, stream: required(values, 'stream'), subject: values.subject as string | undefined };
}

export function statusFlags(values: Record<string, unknown>): { everyMs: number; json: boolean } {
  return { everyMs: integerOption(values, 'status-ms', 0) ?? DEFAULT_STATUS_MS, json: values.json === true };
}

/** The parseArgs entries of count flags (`--window N`): strings, read by countFlags. */
export function countFlagOptions(names: readonly string[]): Command['options'] {
  return Object.fromEntries(names.map((name) => [name, { type: 'string' }]));
}

/** The count flags among `names` that were given, under their option names. */
export function countFlags(values: Record<string, unknown>, names: readonly string[]): Record<string, number> {
  const given: Record<string, number> = {};
  for (const name of names) {
    const value = integerOption(values, name);
    if (value !== undefined) given[name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase())] = value;
  }
  return given;
}

/**
 * A value segwal/jetstream refused as an option (`invalid ship() options:
 * option \`window\`: expected a number <= 1024, got 5000`) is a usage error,
 * said with the flag: `--window: expected a number <= 1024, got 5000`.
 * Every other error passes as it is.
 */
export function inFlagWords(error: unknown): unknown {
  if (!(error instanceof WalError) || error.code !== 'WAL_INVALID_OPTIONS') return error;
  const refused = /^invalid \w+\(\) options: (.*)$/.exec(error.message);
  if (refused === null) return error;
  const words = refused[1]!.replace(/option `(\w+)`/g, (_, name: string) => `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`);
  return new UsageError(words);
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string') throw new UsageError(`--${name} is required`);
  return value;
}
