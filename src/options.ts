import path from 'node:path';
import { z } from 'zod';
import { codecByName, codecs } from './codec.js';
import { describeIssues } from './describe-issues.js';
import { WalError } from './errors.js';
import { MAX_LSN } from './format/constants.js';
import type { WalIo } from './io/types.js';
import { preallocationFor, type Preallocation } from './segment-files.js';
import type { Codec, CommitOptions, ReplayHandler, SyncMode, TailDamagePolicy, WalOptions } from './types.js';

/** Every default lives here. */
export const DEFAULT_GROUP_INTERVAL_MS = 50;
export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
export const MIN_SEGMENT_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 4 * 1024 * 1024 * 1024;
/** How long open waits for a contended directory lock (docs/DURABILITY.md, "Open and recovery"). */
export const LOCK_WAIT_MS = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface NormalizedOptions<In, Out> {
  /** Absolute path. */
  dir: string;
  syncMode: SyncMode;
  /** Group mode's fsync interval; unused by other modes. */
  groupIntervalMs: number;
  segmentBytes: number;
  checkpointLsn: number | 'marker';
  tailDamage: TailDamagePolicy;
  io: 'native' | 'js' | WalIo;
  codec: Codec<In, Out>;
  /** From `preallocate` and the sync mode (`preallocationFor`). */
  preallocation: Preallocation;
  onReplay: ReplayHandler<Out> | null;
  logId: string | null;
  replica: boolean;
  /** Batches nobody waits to see fsync'd are written from the event loop (sync modes group and none only). */
  writeOnLoop: boolean;
  /** `wal.metrics()` is kept (docs/OPERATIONS.md). */
  metrics: boolean;
}

const isWalIo = (value: unknown): value is WalIo => {
  const io = value as Partial<WalIo> | null;
  return (
    typeof io === 'object' &&
    io !== null &&
    typeof io.name === 'string' &&
    typeof io.sync === 'object' &&
    typeof io.async === 'object' &&
    typeof io.crc32 === 'function' &&
    (io.checkFrameCrcs === undefined || typeof io.checkFrameCrcs === 'function')
  );
};

const isCodec = (value: unknown): value is Codec<unknown, unknown> => {
  const codec = value as Partial<Codec<unknown, unknown>> | null;
  return typeof codec === 'object' && codec !== null && typeof codec.encode === 'function' && typeof codec.decode === 'function';
};

/** A backend by name or a `WalIo` object (`Wal.open`, the readers). */
export const ioOptionSchema = z.union([z.enum(['native', 'js']), z.custom<WalIo>(isWalIo, 'expected a WalIo object')]);

/** A codec by name or a `Codec` object (`Wal.open`, the readers). */
export const codecOptionSchema = z.union([z.enum(['bytes', 'utf8', 'json']), z.custom<Codec<unknown, unknown>>(isCodec, 'expected a Codec object')], {
  error: (issue) =>
    issue.input === codecs.json ? 'expected a Codec, got the function codecs.json: call it, as codecs.json() or codecs.json(schema)' : undefined,
});

/** The codec an option names, the bytes codec when none. */
export function resolveCodec(option: z.infer<typeof codecOptionSchema> | undefined): Codec<unknown, unknown> {
  return option === undefined ? codecByName('bytes') : typeof option === 'string' ? codecByName(option) : option;
}

const lsnSchema = z.number().int().min(0).max(MAX_LSN);
/** A replay fence: an LSN, or 'marker' for the log's last Checkpoint record. */
export const fenceSchema = z.union([lsnSchema, z.literal('marker')], { error: "expected an integer LSN in 0..2^53-1 or 'marker'" });

// Messages that start with "expected" are the option's own words (src/describe-issues.ts).
/** The `sync` option: Wal.open's, and a follower's for its replica. */
export const syncOptionSchema = z.union(
  [
    z.enum(['per-commit', 'group', 'none']),
    z.strictObject({
      mode: z.literal('group'),
      intervalMs: z.number().positive().max(MAX_TIMER_MS).optional(),
    }),
  ],
  { error: "expected 'per-commit' | 'group' | 'none' | { mode: 'group', intervalMs }" },
);

const optionsSchema = z.strictObject({
  dir: z.string({ error: 'expected a directory path' }).min(1, 'expected a non-empty path'),
  sync: syncOptionSchema.optional(),
  segmentBytes: z.number().int().min(MIN_SEGMENT_BYTES).max(MAX_SEGMENT_BYTES).optional(),
  checkpointLsn: fenceSchema.optional(),
  tailDamage: z.enum(['cut', 'refuse'], { error: "expected 'cut' | 'refuse'" }).optional(),
  io: ioOptionSchema.optional(),
  codec: codecOptionSchema.optional(),
  preallocate: z.boolean().optional(),
  logId: z.string().regex(/^[0-9a-f]{32}$/, 'expected 32 lowercase hex digits').optional(),
  replica: z.boolean().optional(),
  writeOnLoop: z.boolean().optional(),
  metrics: z.boolean().optional(),
  onReplay: z.custom<ReplayHandler<unknown>>((value) => typeof value === 'function', 'expected a function').optional(),
});

export function normalizeOptions<In, Out>(options: WalOptions<In, Out>): NormalizedOptions<In, Out> {
  const parsed = optionsSchema.safeParse(options, { reportInput: true });
  if (!parsed.success) throw invalidOptions(parsed.error.issues);
  const given = parsed.data;
  const sync = given.sync ?? 'group';
  const syncMode: SyncMode = typeof sync === 'string' ? sync : sync.mode;
  return {
    dir: path.resolve(given.dir),
    syncMode,
    groupIntervalMs: (typeof sync === 'object' ? sync.intervalMs : undefined) ?? DEFAULT_GROUP_INTERVAL_MS,
    segmentBytes: given.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    checkpointLsn: given.checkpointLsn ?? 'marker',
    tailDamage: given.tailDamage ?? 'cut',
    io: given.io ?? 'native',
    codec: resolveCodec(given.codec) as Codec<In, Out>,
    preallocation: preallocationFor(given.preallocate ?? true, syncMode),
    onReplay: (given.onReplay as ReplayHandler<Out> | undefined) ?? null,
    logId: given.logId ?? null,
    replica: given.replica ?? false,
    writeOnLoop: syncMode !== 'per-commit' && (given.writeOnLoop ?? true),
    metrics: given.metrics ?? true,
  };
}

const commitOptionsSchema = z.strictObject({ durable: z.boolean().optional() });

/**
 * Validates the options of `commit`, `commitSync`, `tx.commit` and
 * `tx.commitSync`, before anything is staged or any LSN is taken.
 */
export function checkCommitOptions(options: unknown, method: string): CommitOptions {
  if (options === undefined) return {};
  const parsed = commitOptionsSchema.safeParse(options, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw invalidOptions(parsed.error.issues, `invalid ${method}() options`);
}

/** `wal.readTransactions` options. */
export const walReadOptions = z.strictObject({
  fromLsn: z.number().int().min(1).max(MAX_LSN).optional(),
  scanFromLsn: z.number().int().min(1).max(MAX_LSN).optional(),
  signal: z.instanceof(AbortSignal).optional(),
  codec: codecOptionSchema.optional(),
});

/** Validates the options object of a function other than `Wal.open` (`replayDir`, `readWal`, …). */
export function parseOptions<T extends z.ZodType>(schema: T, options: unknown, method: string): z.infer<T> {
  const parsed = schema.safeParse(options === undefined ? {} : options, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw invalidOptions(parsed.error.issues, `invalid ${method}() options`);
}

/** A directory argument of a read-only function: a non-empty path, resolved. */
export function checkDirArgument(dir: unknown, method: string): string {
  if (typeof dir === 'string' && dir.length > 0) return path.resolve(dir);
  throw new WalError('WAL_INVALID_OPTIONS', `invalid argument \`dir\` of ${method}(): expected a non-empty path, got ${String(dir)}`);
}

export function invalidOptions(issues: readonly z.core.$ZodIssue[], what = 'invalid options'): WalError {
  return new WalError('WAL_INVALID_OPTIONS', `${what}: ${describeIssues(issues, 'option')}`);
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
