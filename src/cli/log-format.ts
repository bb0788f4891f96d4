/**
 * How a server command logs: human lines (`2024-05-01T12:00:00.000Z registered "x"`, the
 * default) or, with `--log-format json`, one JSON object per line through pino: time, level,
 * msg and the event's fields, for log collectors. Both write synchronously to stdout, so a
 * line logged just before exit is never lost.
 */
import { pino } from 'pino';
import { timestamp } from './output.js';

export type LogLevel = 'info' | 'warn' | 'error';
export type LogFormat = 'human' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['human', 'json'];
/** The default, typed as a LogFormat for yargs (a bare literal would widen to string). */
export const DEFAULT_LOG_FORMAT: LogFormat = 'human';

export interface EventLogger {
  /** `msg` is the human line; `fields` go only into JSON lines. */
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

export function eventLogger(format: LogFormat): EventLogger {
  if (format === 'human') return { log: (_level, msg) => void process.stdout.write(`${timestamp()} ${msg}\n`) };
  const logger = pino(
    {
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: true }),
  );
  return { log: (level, msg, fields = {}) => logger[level](fields, msg) };
}
