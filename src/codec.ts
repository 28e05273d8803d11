import type { z } from 'zod';
import { describeIssues } from './describe-issues.js';
import { WalError } from './errors.js';
import type { Codec, CodecName, CodecsByName } from './types.js';

/** Anything with zod's `safeParse`: a zod schema, or a look-alike. */
export interface EventSchema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: { message: string } };
}

function invalidEvent(message: string, cause?: unknown): WalError {
  return new WalError('WAL_INVALID_EVENT', message, { cause });
}

function undecodable(lsn: number, message: string, cause?: unknown): WalError {
  return new WalError('WAL_DECODE', `event at LSN ${lsn} does not decode: ${message}`, { lsn, cause });
}

/** Raw bytes: any Uint8Array in, a Buffer out (a view into the replay buffer; copy it to keep it past the callback). */
const bytes: Codec<Uint8Array, Buffer> = {
  name: 'bytes',
  encode(event) {
    if (!(event instanceof Uint8Array)) {
      throw invalidEvent(`the bytes codec takes a Uint8Array or Buffer, got ${describe(event)}`);
    }
    return event;
  },
  decode: (data) => data,
};

const utf8: Codec<string> = {
  name: 'utf8',
  encode(event) {
    if (typeof event !== 'string') throw invalidEvent(`the utf8 codec takes a string, got ${describe(event)}`);
    return Buffer.from(event, 'utf8');
  },
  decode: (data) => data.toString('utf8'),
};

/** JSON text; with a schema, every event is checked on write and on replay. */
function json<T = unknown>(schema?: EventSchema<T>): Codec<T> {
  return {
    name: schema === undefined ? 'json' : 'json+schema',
    encode(event) {
      if (schema !== undefined) {
        const checked = schema.safeParse(event);
        if (!checked.success) throw invalidEvent(`event fails the schema: ${schemaFailure(checked.error)}`, checked.error);
      }
      let text: string | undefined;
      try {
        text = JSON.stringify(event);
      } catch (error) {
        throw invalidEvent(`event is not JSON-serializable: ${(error as Error).message}`, error);
      }
      if (text === undefined) throw invalidEvent(`event is not JSON-serializable: ${describe(event)}`);
      return Buffer.from(text, 'utf8');
    },
    decode(data, lsn) {
      let value: unknown;
      try {
        value = JSON.parse(data.toString('utf8'));
      } catch (error) {
        throw undecodable(lsn, `not JSON (${(error as Error).message})`, error);
      }
      if (schema === undefined) return value as T;
      const checked = schema.safeParse(value);
      if (!checked.success) throw undecodable(lsn, `fails the schema: ${schemaFailure(checked.error)}`, checked.error);
      return checked.data;
    },
  };
}

/** The built-in codecs. Declared, not inferred, so the shipped .d.ts reads the same on every TypeScript version. */
export interface Codecs {
  readonly bytes: Codec<Uint8Array, Buffer>;
  readonly utf8: Codec<string>;
  json<T = unknown>(schema?: EventSchema<T>): Codec<T>;
}

export const codecs: Codecs = { bytes, utf8, json };

export function codecByName<N extends CodecName>(name: N): CodecsByName[N] {
  return (name === 'json' ? json() : codecs[name as 'bytes' | 'utf8']) as CodecsByName[N];
}

/** A schema's failure in one line: zod's issues as `describeIssues` words them (zod's own message is JSON), another schema's message as it is. */
function schemaFailure(error: { message: string }): string {
  const issues = (error as { issues?: unknown }).issues;
  return Array.isArray(issues) && issues.length > 0 ? describeIssues(issues as z.core.$ZodIssue[], 'field') : error.message;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? `an object (${value.constructor?.name ?? 'Object'})` : `a ${typeof value}`;
}
