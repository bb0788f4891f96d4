/** Local file-system trouble as the project's one-line errors. */
import { PeerdexError } from '../protocol/errors.js';

/** Turns a file-system error into a one-line ERR_FILE that says what to do. */
export function fileError(err: unknown, what: string): PeerdexError {
  const e = err as NodeJS.ErrnoException;
  const why =
    e.code === 'ENOSPC'
      ? 'no space left on the device'
      : e.code === 'EACCES' || e.code === 'EPERM'
        ? 'permission denied'
        : e.code === 'EROFS'
          ? 'the file system is read-only'
          : e.code === 'ENOENT'
            ? 'no such file or folder'
            : e.message;
  return new PeerdexError('ERR_FILE', `${what}: ${why}`, { cause: err });
}
