import type { z } from 'zod';

/*
 * zod's issues as one readable line (docs/ERRORS.md), never its JSON: what the
 * value should have been and what it was, at its path —
 * "`sync.intervalMs`: expected a number > 0, got -1".
 *
 * A schema states its own expectation with a message that starts with
 * "expected" (`z.union([...], { error: "expected 'a' | 'b'" })`); every other
 * issue is worded here from its fields, not from zod's message. "got …" is
 * added when the issue carries its input (parse with `reportInput: true`):
 * options do; events do not, so their contents never reach a message.
 */

type Issue = z.core.$ZodIssue;

/**
 * Each issue as "<noun> `path`: expected …, got …" (no noun and path at the
 * top level), joined by "; ". Unknown keys at the top level are "unknown
 * <noun>(s) `a`, `b`".
 */
export function describeIssues(issues: readonly Issue[], noun: string): string {
  return firstPerValue(issues)
    .flatMap((issue) => describeIssue(issue, [], noun))
    .join('; ');
}

/** One issue per value: zod reports each failed check of a number (integer, range), and the first says enough. */
function firstPerValue(issues: readonly Issue[]): Issue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.code === 'unrecognized_keys' ? 'keys:' : ''}${issue.path.map(String).join('.')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function describeIssue(issue: Issue, prefix: readonly PropertyKey[], noun: string): string[] {
  const path = [...prefix, ...issue.path];
  const member = issue.code === 'invalid_union' && Array.isArray(issue.errors) ? matchedMember(issue.errors) : null;
  if (member !== null) return member.flatMap((inner) => describeIssue(inner, path, noun));
  const where = path.length === 0 ? '' : `${noun} \`${path.map(String).join('.')}\`: `;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((key) => `\`${key}\``).join(', ');
    return [path.length === 0 ? `unknown ${noun}(s) ${keys}` : `${where}unknown key(s) ${keys}`];
  }
  const expected = expectation(issue);
  const got = 'input' in issue && !/\bgot\b/.test(expected) ? `, got ${describeValue(issue.input)}` : '';
  return [`${where}${expected}${got}`];
}

/**
 * The issues of the one union member the value was meant for: the only member
 * whose every issue lies inside the value (it had the member's shape, a field
 * was wrong). Null when there is no such single member.
 */
function matchedMember(members: readonly Issue[][]): Issue[] | null {
  const inside = members.filter((issues) => issues.length > 0 && issues.every((inner) => inner.path.length > 0));
  return inside.length === 1 ? inside[0]! : null;
}

/** What the value should have been, as "expected …". */
function expectation(issue: Issue): string {
  if (issue.message.startsWith('expected') || issue.code === 'custom' || !hasZod4Fields(issue)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `expected ${issue.values.map(literal).join(' | ')}`;
    case 'invalid_union': // each member's expectation of the value itself
      return `expected ${issue.errors.map((member) => expectation(member[0]!).replace(/^expected /, '')).join(' | ')}`;
    case 'too_small':
      return `expected ${bounded(issue.origin, issue.inclusive === true ? '>=' : '>', issue.minimum)}`;
    case 'too_big':
      return `expected ${bounded(issue.origin, issue.inclusive === true ? '<=' : '<', issue.maximum)}`;
    default:
      return issue.message;
  }
}

/** False for an issue shaped like zod 3's (a look-alike schema given to codecs.json): its message is used then. */
function hasZod4Fields(issue: Issue): boolean {
  if (issue.code === 'invalid_union') return Array.isArray(issue.errors);
  if (issue.code === 'invalid_value') return Array.isArray(issue.values);
  if (issue.code === 'too_small' || issue.code === 'too_big') return typeof issue.origin === 'string';
  return true;
}

/** "a number > 0", "a string of length >= 1". */
function bounded(origin: string, relation: string, bound: number | bigint): string {
  const name = TYPE_NAMES[origin] ?? origin;
  return ['number', 'int', 'bigint', 'date'].includes(origin) ? `${name} ${relation} ${bound}` : `${name} of length ${relation} ${bound}`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  bigint: 'a bigint',
  object: 'an object',
  array: 'an array',
  function: 'a function',
  undefined: 'undefined',
  null: 'null',
};

/** A value as a message shows it: the string '5', -1, null, an object, the function json. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (typeof value === 'function') return value.name === '' ? 'a function' : `the function ${value.name}`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) {
    const name = (value as object).constructor?.name;
    return name === undefined || name === 'Object' ? 'an object' : `a ${name}`;
  }
  if (typeof value === 'bigint') return `${value}n`;
  return String(value);
}

/** A union member or enum value as written in code: 'group', 5, null. */
function literal(value: unknown): string {
  return typeof value === 'string' ? quote(value) : String(value);
}

function quote(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return `'${shown.replaceAll("'", "\\'")}'`;
}
