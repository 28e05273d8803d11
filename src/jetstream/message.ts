import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';

/** Message headers as name → value. This layer writes one value per name, so that is what it reads back. */
export type MessageHeaders = Record<string, string>;

/** A message as the stream stores it. */
export interface StoredMessage {
  subject: string;
  /** The stream sequence. */
  seq: number;
  /** Every header stored with the message, `Nats-Msg-Id` included; none that a read adds. */
  headers: MessageHeaders;
  data: Uint8Array;
  /** When the stream stored it. */
  time: Date;
}

export function toNatsHeaders(headers: MessageHeaders): MsgHdrs {
  const result = natsHeaders();
  for (const [name, value] of Object.entries(headers)) result.set(name, value);
  return result;
}

/** The headers of a read message, less the names in `leaveOut` (those a read added). */
export function fromNatsHeaders(headers: MsgHdrs | undefined, leaveOut: ReadonlySet<string> = new Set()): MessageHeaders {
  const result: MessageHeaders = {};
  if (headers === undefined) return result;
  for (const name of headers.keys()) {
    if (!leaveOut.has(name)) result[name] = headers.get(name);
  }
  return result;
}
