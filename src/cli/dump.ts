import { WalError } from '../errors.js';
import { RECORD_KIND_NAMES, RecordKind, firstLsnOf } from '../format/constants.js';
import { recordEvents, replicatedPayload } from '../format/frame.js';
import { readWal } from '../readers.js';
import type { WalRecord } from '../types.js';
import { describeDamage } from './report.js';
import { lastSegmentTailDamage, requireLog } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, UsageError, lsnOption, type Command } from './usage.js';

type PayloadMode = 'auto' | 'base64' | 'utf8' | 'hex' | 'none';
const PAYLOAD_MODES: readonly PayloadMode[] = ['auto', 'base64', 'utf8', 'hex', 'none'];
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** Lines are written in chunks of about this many characters. */
const FLUSH_CHARS = 64 * 1024;

function encodePayload(bytes: Buffer, mode: Exclude<PayloadMode, 'none'>): { encoding: string; data: string } {
  if (mode === 'auto') {
    try {
      return { encoding: 'utf8', data: strictUtf8.decode(bytes) };
    } catch {
      return { encoding: 'base64', data: bytes.toString('base64') };
    }
  }
  return { encoding: mode, data: bytes.toString(mode) };
}

function kindFilter(raw: unknown): RecordKind | undefined {
  if (raw === undefined) return undefined;
  const text = String(raw).toLowerCase();
  for (const [kind, name] of Object.entries(RECORD_KIND_NAMES)) {
    if (name.toLowerCase() === text || kind === text) return Number(kind) as RecordKind;
  }
  throw new UsageError(`--kind takes one of ${Object.values(RECORD_KIND_NAMES).join(', ')} (or its number), not ${String(raw)}`);
}

/**
 * One record as a JSON line: Mutation payloads as `payload`; MutationBatch,
 * Commit and Replicated events as `events` (and a Replicated record's
 * `streamSeq`); no data with `--payload none`.
 */
function recordLine(record: WalRecord, mode: PayloadMode): string {
  const line: Record<string, unknown> = {
    lsn: record.lsn,
    kind: RECORD_KIND_NAMES[record.kind],
    txBeginLsn: record.txBeginLsn,
    segmentId: record.segmentId,
    offset: record.offset,
  };
  if (record.kind === RecordKind.Replicated) line.streamSeq = replicatedPayload(record.payload).streamSeq;
  if (mode === 'none') return JSON.stringify(line);
  if (record.kind === RecordKind.Mutation) line.payload = encodePayload(record.payload, mode);
  else line.events = recordEvents(record)?.map((event) => encodePayload(event, mode));
  return JSON.stringify(line);
}

/** `--tx` must name where a transaction begins: a TxBegin, or a Commit record's first LSN. */
function checkNamesTransaction(record: WalRecord, tx: number): void {
  const name = RECORD_KIND_NAMES[record.kind];
  if (record.kind === RecordKind.Commit) {
    if (record.txBeginLsn === tx) return;
    throw new UsageError(`--tx ${tx} is inside a Commit record (LSN ${record.txBeginLsn}..${record.lsn}); its transaction begins at LSN ${record.txBeginLsn}`);
  }
  if (record.kind !== RecordKind.TxBegin) throw new UsageError(`--tx ${tx} names a ${name} record, not a TxBegin`);
}

/**
 * A record of the transaction that begins at `txBeginLsn`: its TxBegin, or a
 * record naming it. A Checkpoint's tx_begin_lsn is a snapshot LSN, not a
 * transaction, even when the two numbers match.
 */
function inTransaction(record: WalRecord, txBeginLsn: number): boolean {
  if (record.kind === RecordKind.TxBegin) return record.lsn === txBeginLsn;
  return record.kind !== RecordKind.Checkpoint && record.txBeginLsn === txBeginLsn;
}

export const dumpCommand: Command = {
  name: 'dump',
  summary: 'every record as NDJSON, with filters',
  help: `segwal dump <dir> [--from LSN] [--to LSN] [--kind K] [--tx LSN] [--payload MODE]

One JSON object per line per record: lsn, kind, txBeginLsn, segmentId, offset,
and the data: "payload" for a Mutation, "events" for a MutationBatch or a
Commit (a whole transaction in one record), each as { encoding, data }. A
replica's Replicated record (a whole shipped transaction at its commit LSN)
has "events" and the "streamSeq" that carried it. Records pass the same checks as open (records of a
transaction begun in a truncated segment are printed, not refused). A torn
tail in the last segment (what open cuts, or a frame a Wal is writing right
now) ends the dump quietly, exit 0; damage with valid frames after it, or
anywhere else, ends it after the records before it, with the problem on
stderr (exit 1).
  --from LSN      first LSN to print (default 1)
  --to LSN        last LSN to print
  --kind K        only TxBegin, TxCommit, TxAbort, Mutation, MutationBatch, Checkpoint,
                  Commit or Replicated
  --tx LSN        only the records of the transaction that begins at this LSN (its
                  TxBegin, or its Commit record's first LSN; any other LSN is refused)
  --payload MODE  auto (utf8 when valid, else base64; default), base64, utf8, hex,
                  none (the data left out)`,
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    kind: { type: 'string' },
    tx: { type: 'string' },
    payload: { type: 'string' },
  },
  async run(dir, values, out) {
    const from = lsnOption(values, 'from') ?? 1;
    const to = lsnOption(values, 'to') ?? Number.MAX_SAFE_INTEGER;
    const tx = lsnOption(values, 'tx');
    if (from > to) throw new UsageError(`--from ${from} is above --to ${to}`);
    if (tx !== undefined && tx > to) throw new UsageError(`--tx ${tx} is above --to ${to}`);
    const kind = kindFilter(values.kind);
    const mode = (values.payload ?? 'auto') as PayloadMode;
    if (!PAYLOAD_MODES.includes(mode)) throw new UsageError(`--payload takes one of ${PAYLOAD_MODES.join(', ')}, not ${String(values.payload)}`);
    await requireLog(dir);
    let pending = '';
    const flush = async () => {
      const text = pending;
      pending = '';
      if (text.length > 0) await out.stdout(text);
    };
    // Reading starts at --tx even when --from is past it, to check that --tx names a TxBegin.
    let lastLsnRead = 0;
    let stoppedAtTo = false;
    try {
      for await (const record of readWal(dir, { fromLsn: Math.min(from, tx ?? from) })) {
        const first = firstLsnOf(record);
        lastLsnRead = record.lsn;
        if (first > to) {
          stoppedAtTo = true;
          break;
        }
        if (tx !== undefined && first <= tx && tx <= record.lsn) checkNamesTransaction(record, tx);
        if (record.lsn < from) continue;
        if (kind !== undefined && record.kind !== kind) continue;
        if (tx !== undefined && !inTransaction(record, tx)) continue;
        pending += `${recordLine(record, mode)}\n`;
        if (pending.length >= FLUSH_CHARS) await flush();
      }
      // readWal ends quietly at damage in the last segment even when valid frames follow it: that is not the end of the log.
      const tailDamage = stoppedAtTo ? null : await lastSegmentTailDamage(dir);
      if (tailDamage !== null) throw tailDamage;
    } catch (error) {
      if (!(error instanceof WalError) || error.code === 'WAL_IO') throw error;
      await flush();
      out.stderr(`damage: ${JSON.stringify(describeDamage(error))}\n`);
      return EXIT_DAMAGE;
    }
    // The log ends below --tx. Nothing was printed: a transaction's records lie at or above its TxBegin.
    if (tx !== undefined && lastLsnRead < tx) throw new UsageError(`--tx ${tx} names no record: the log ends before LSN ${tx}`);
    await flush();
    return EXIT_OK;
  },
};
