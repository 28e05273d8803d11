/** Events as Buffers: `events('a', 'b')`. */
export function events(...texts: string[]): Buffer[] {
  return texts.map((text) => Buffer.from(text));
}

/** Buffers as strings, for readable assertions. */
export function texts(buffers: readonly Uint8Array[]): string[] {
  return buffers.map((buffer) => Buffer.from(buffer).toString());
}
