import { WalError, toIoError } from './errors.js';
import { call, type IoProgram } from './io/program.js';

/**
 * Creates the log directory if missing (mkdir -p). A file where the directory
 * or one above it should be is a wrong `dir` option, not an I/O failure that a
 * retry could fix, so it is WAL_INVALID_OPTIONS (docs/ERRORS.md).
 */
export function* makeLogDir(dir: string): IoProgram<void> {
  try {
    yield* call('makeDir', dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw toIoError(error, 'create directory', dir);
    const which = code === 'EEXIST' ? 'it is a file' : 'a path above it is a file';
    throw new WalError('WAL_INVALID_OPTIONS', `invalid options: option \`dir\`: ${dir} is not a directory (${which})`, {
      file: dir,
      cause: error,
    });
  }
}
