import path from 'node:path';
import { z } from 'zod';
import { codecByName } from './codec.js';
import { WalError } from './errors.js';
import { MAX_LSN } from './format/constants.js';
import type { WalIo } from './io/types.js';
import { preallocationFor, type Preallocation } from './segment-files.js';
import type { Codec, ReplayHandler, SyncMode, WalOptions } from './types.js';

/** Every default lives here. */
export const DEFAULT_GROUP_INTERVAL_MS = 50;
export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
export const MIN_SEGMENT_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 4 * 1024 * 1024 * 1024;
/** How long open waits for a contended directory lock (SPEC §6.1). */
export const LOCK_WAIT_MS = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface NormalizedOptions<In, Out> {
  /** Absolute path. */
  dir: string;
  syncMode: SyncMode;
  /** Group mode's fsync interval; unused by other modes. */
  groupIntervalMs: number;
  segmentBytes: number;
  checkpointLsn: number;
  io: 'native' | 'js' | WalIo;
  codec: Codec<In, Out>;
  /** From `preallocate` and the sync mode (`preallocationFor`). */
  preallocation: Preallocation;
  onReplay: ReplayHandler<Out> | null;
}

const isWalIo = (value: unknown): value is WalIo => {
  const io = value as Partial<WalIo> | null;
  return (
    typeof io === 'object' &&
    io !== null &&
    typeof io.name === 'string' &&
    typeof io.sync === 'object' &&
    typeof io.async === 'object' &&
    typeof io.crc32 === 'function'
  );
};

const isCodec = (value: unknown): value is Codec<unknown, unknown> => {
  const codec = value as Partial<Codec<unknown, unknown>> | null;
  return typeof codec === 'object' && codec !== null && typeof codec.encode === 'function' && typeof codec.decode === 'function';
};

const lsnSchema = z.number().int().min(0).max(MAX_LSN);

const optionsSchema = z.strictObject({
  dir: z.string().min(1, 'expected a non-empty path'),
  sync: z
    .union([
      z.enum(['per-commit', 'group', 'none']),
      z.strictObject({
        mode: z.literal('group'),
        intervalMs: z.number().positive().max(MAX_TIMER_MS).optional(),
      }),
    ])
    .optional(),
  segmentBytes: z.number().int().min(MIN_SEGMENT_BYTES).max(MAX_SEGMENT_BYTES).optional(),
  checkpointLsn: lsnSchema.optional(),
  io: z
    .union([z.enum(['native', 'js']), z.custom<WalIo>(isWalIo, 'expected a WalIo object')])
    .optional(),
  codec: z
    .union([z.enum(['bytes', 'utf8', 'json']), z.custom<Codec<unknown, unknown>>(isCodec, 'expected a Codec object')])
    .optional(),
  preallocate: z.boolean().optional(),
  onReplay: z.custom<ReplayHandler<unknown>>((value) => typeof value === 'function', 'expected a function').optional(),
});

export function normalizeOptions<In, Out>(options: WalOptions<In, Out>): NormalizedOptions<In, Out> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw invalidOptions(parsed.error.issues);
  const given = parsed.data;
  const sync = given.sync ?? 'group';
  const syncMode: SyncMode = typeof sync === 'string' ? sync : sync.mode;
  const codec = given.codec ?? 'bytes';
  return {
    dir: path.resolve(given.dir),
    syncMode,
    groupIntervalMs: (typeof sync === 'object' ? sync.intervalMs : undefined) ?? DEFAULT_GROUP_INTERVAL_MS,
    segmentBytes: given.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    checkpointLsn: given.checkpointLsn ?? 0,
    io: given.io ?? 'native',
    codec: (typeof codec === 'string' ? codecByName(codec) : codec) as Codec<In, Out>,
    preallocation: preallocationFor(given.preallocate ?? true, syncMode),
    onReplay: (given.onReplay as ReplayHandler<Out> | undefined) ?? null,
  };
}

export function invalidOptions(issues: readonly z.core.$ZodIssue[]): WalError {
  const described = issues.map((issue) => {
    const name = issue.path.length === 0 ? 'options' : issue.path.map(String).join('.');
    return issue.code === 'unrecognized_keys'
      ? `unknown option(s) ${issue.keys.map((key) => `\`${key}\``).join(', ')}`
      : `option \`${name}\`: ${issue.message}`;
  });
  return new WalError('WAL_INVALID_OPTIONS', `invalid options: ${described.join('; ')}`);
}

/** Validates an LSN argument of a method (`truncateUpTo(fence)`, …). */
export function checkLsnArgument(value: unknown, argument: string): number {
  const parsed = lsnSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new WalError(
    'WAL_INVALID_OPTIONS',
    `invalid argument \`${argument}\`: expected an integer LSN in 0..2^53-1, got ${String(value)}`,
  );
}
