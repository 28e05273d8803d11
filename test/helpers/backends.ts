import { jsIo } from '../../src/io/js.js';
import { createNativeIo } from '../../src/io/native.js';
import type { WalIo } from '../../src/io/types.js';

/** The two shipped backends, for `describe.each`: every io-dependent behaviour runs on both. */
export const BACKENDS: ReadonlyArray<{ name: 'native' | 'js'; io: () => WalIo }> = [
  { name: 'native', io: createNativeIo },
  { name: 'js', io: () => jsIo },
];
