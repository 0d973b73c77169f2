/**
 * One-line JSON logs on stderr. Kept tiny on purpose: the service and each
 * worker log through this, and a log line must never carry a stream key, so
 * callers pass URLs through maskUrl (src/media/urls.ts) first.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function threshold(): number {
  const env = process.env['VLIVE_LOG_LEVEL'];
  return env !== undefined && env in order ? order[env as LogLevel] : order.info;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(base: Record<string, unknown> = {}): Logger {
  const min = threshold();
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (order[level] < min) return;
    const line = { t: new Date().toISOString(), level, msg, ...base, ...fields };
    process.stderr.write(`${JSON.stringify(line)}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }),
  };
}
