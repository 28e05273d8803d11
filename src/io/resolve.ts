import { jsIo } from './js.js';
import { createNativeIo } from './native.js';
import type { WalIo } from './types.js';

/** The backend an `io` option names, or the `WalIo` object given. */
export function resolveIo(io: 'native' | 'js' | WalIo): WalIo {
  if (io === 'js') return jsIo;
  if (io === 'native') return createNativeIo();
  return io;
}

/**
 * The native backend when the addon loads, else the js one: for code that
 * works the same with either (the readers, the wire's CRC), where the
 * addon's CRC-32 is the faster (docs/BENCHMARKS.md).
 */
export function bestAvailableIo(): WalIo {
  try {
    return resolveIo('native');
  } catch {
    return resolveIo('js'); // no addon here: the js backend reads the same, with zlib's CRC-32
  }
}
