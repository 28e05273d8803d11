import { jsIo } from './js.js';
import { createNativeIo } from './native.js';
import type { WalIo } from './types.js';

/** The backend an `io` option names, or the `WalIo` object given. */
export function resolveIo(io: 'native' | 'js' | WalIo): WalIo {
  if (io === 'js') return jsIo;
  if (io === 'native') return createNativeIo();
  return io;
}
