import { WalError } from '../errors.js';
import { RECORD_KIND_NAMES, RecordKind, firstLsnOf } from '../format/constants.js';
import { batchEvents } from '../format/frame.js';
import { readWal } from '../readers.js';
import type { WalRecord } from '../types.js';
import { describeDamage } from './report.js';
import { EXIT_DAMAGE, EXIT_OK, UsageError, lsnOption, type Command } from './usage.js';

type PayloadMode = 'auto' | 'base64' | 'utf8' | 'hex' | 'none';
const PAYLOAD_MODES: readonly PayloadMode[] = ['auto', 'base64', 'utf8', 'hex', 'none'];
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** Lines are written in chunks of about this many characters. */
const FLUSH_CHARS = 64 * 1024;

function encodePayload(bytes: Buffer, mode: PayloadMode): { encoding: string; data: string } | null {
  if (mode === 'none') return null;
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
  throw new UsageError(`--kind takes one of ${Object.values(RECORD_KIND_NAMES).join(', ')} (or 1..7), not ${String(raw)}`);
}

/** One record as a JSON line: Mutation payloads as `payload`, MutationBatch and Commit events as `events`. */
function recordLine(record: WalRecord, mode: PayloadMode): string {
  const line: Record<string, unknown> = {
    lsn: record.lsn,
    kind: RECORD_KIND_NAMES[record.kind],
    txBeginLsn: record.txBeginLsn,
    segmentId: record.segmentId,
    offset: record.offset,
  };
  if (record.kind === RecordKind.Mutation) line.payload = encodePayload(record.payload, mode);
  if (record.kind === RecordKind.MutationBatch || record.kind === RecordKind.Commit) line.events = batchEvents(record.payload).map((event) => encodePayload(event, mode));
  return JSON.stringify(line);
}

export const dumpCommand: Command = {
  name: 'dump',
  summary: 'every record as NDJSON, with filters',
  help: `segwal dump <dir> [--from LSN] [--to LSN] [--kind K] [--tx LSN] [--payload MODE]

One JSON object per line per record: lsn, kind, txBeginLsn, segmentId, offset,
and the data: "payload" for a Mutation, "events" for a MutationBatch or a
Commit (a whole transaction in one record), each as { encoding, data }. Records pass the same checks as open (records of a
transaction begun in a truncated segment are printed, not refused). A torn
tail in the last segment (what open cuts, or a frame a Wal is writing right
now) ends the dump quietly, exit 0; damage anywhere else ends it after the
records before it, with the problem on stderr (exit 1).
  --from LSN      first LSN to print (default 1)
  --to LSN        last LSN to print
  --kind K        only TxBegin, TxCommit, TxAbort, Mutation, MutationBatch, Checkpoint or Commit
  --tx LSN        only the records of the transaction whose TxBegin has this LSN
  --payload MODE  auto (utf8 when valid, else base64; default), base64, utf8, hex, none`,
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
    const kind = kindFilter(values.kind);
    const mode = (values.payload ?? 'auto') as PayloadMode;
    if (!PAYLOAD_MODES.includes(mode)) throw new UsageError(`--payload takes one of ${PAYLOAD_MODES.join(', ')}, not ${String(values.payload)}`);
    let pending = '';
    const flush = async () => {
      const text = pending;
      pending = '';
      if (text.length > 0) await out.stdout(text);
    };
    try {
      for await (const record of readWal(dir, { fromLsn: from })) {
        if (firstLsnOf(record) > to) break;
        if (kind !== undefined && record.kind !== kind) continue;
        if (tx !== undefined && record.txBeginLsn !== tx && !(record.kind === RecordKind.TxBegin && record.lsn === tx)) continue;
        pending += `${recordLine(record, mode)}\n`;
        if (pending.length >= FLUSH_CHARS) await flush();
      }
    } catch (error) {
      if (!(error instanceof WalError) || error.code === 'WAL_IO') throw error;
      await flush();
      out.stderr(`damage: ${JSON.stringify(describeDamage(error))}\n`);
      return EXIT_DAMAGE;
    }
    await flush();
    return EXIT_OK;
  },
};
