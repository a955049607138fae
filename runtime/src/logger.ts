import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Structured JSON logger (pino) on stdout. Level from `LOG_LEVEL` (default `info`). Components add
 * bindings (`integration`, `source`, `messageId`) with `logger.child(...)` so one event can be
 * followed through every stage.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino({ level: process.env.LOG_LEVEL ?? 'info', base: { app: 'switchyard' }, ...options });
}

/** A logger that writes nothing, for tests and embedding. */
export const silentLogger: Logger = pino({ level: 'silent' });
