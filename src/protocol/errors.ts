/**
 * One error family for the whole project. `code` is stable: callers branch on it, and the CLI
 * maps it to a one-line message and an exit status.
 */
import { formatHostPort } from './fields.js';

/** Numeric codes carried in `E` PDUs (PROTOCOL.md, "E: errors"). */
export const ErrorCode = {
  Exit: 1,
  Retry: 2,
  NotFound: 3,
  Malformed: 4,
  NotPermitted: 5,
  Busy: 6,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export type PeerdexErrorCode =
  | 'ERR_MALFORMED_PDU' // bytes that do not decode as a PDU or frame
  | 'ERR_INVALID_FIELD' // a field that breaks the protocol's rules (name, port, addr, digest)
  | 'ERR_REMOTE' // the other side answered with an E PDU
  | 'ERR_TIMEOUT' // no answer within the allowed tries
  | 'ERR_CONNECTION' // TCP connect refused, reset or closed early
  | 'ERR_NOT_FOUND' // no such content
  | 'ERR_INTEGRITY' // size, packet count or digest mismatch
  | 'ERR_FILE' // local file system trouble (full disk, read-only folder, existing file)
  | 'ERR_USAGE' // a bad option or argument
  | 'ERR_CANCELLED'; // stopped on request (Ctrl-C, close()); partial data kept

export class PeerdexError extends Error {
  readonly code: PeerdexErrorCode;
  /** For ERR_REMOTE: the E code the peer sent. */
  readonly remoteCode: number | undefined;
  /** Structured detail for --json and --verbose (for example each holder tried and why it failed). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: PeerdexErrorCode, message: string, options?: { remoteCode?: number; cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PeerdexError';
    this.code = code;
    this.remoteCode = options?.remoteCode;
    this.details = options?.details;
  }
}

export const isPeerdexError = (err: unknown): err is PeerdexError => err instanceof PeerdexError;

/** The one-line error for a server socket that could not bind (both servers share it). */
export function listenError(proto: 'TCP' | 'UDP', host: string, port: number, err: NodeJS.ErrnoException): PeerdexError {
  const text = err.code === 'EADDRINUSE' ? `${proto} port ${port} on ${host} is already in use` : `cannot listen on ${formatHostPort(host, port)}: ${err.message}`;
  return new PeerdexError('ERR_USAGE', text, { cause: err });
}
