/**
 * The service entry: load the config, start the app, and stop it gracefully
 * on SIGTERM or SIGINT. With --demo it also brings up the demo channel.
 */
import './v8-flags.js';
import { startApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { ensureDemoChannel } from './demo.js';
import { describeGstFailure, missingElements, missingElementsAdvice } from './gst/elements.js';
import { createLogger } from './log.js';

const log = createLogger({ proc: 'vlive' });

/** A start-up failure the person at the terminal can act on: the cause, and what to do. */
class StartupError extends Error {}

/**
 * Everything start-up does, in order; "vlive is up." is printed only once
 * all of it, the demo channel included, has succeeded.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vlive: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Found here, not by the first channel that needs it.
  const missing = await missingElements().catch((err: unknown) => {
    throw new StartupError(`cannot list GStreamer's elements (${describeGstFailure(err)}). Run \`npm run setup\` as root`);
  });
  if (missing.length > 0) throw new StartupError(missingElementsAdvice(missing));

  const app = await startApp(config, log).catch((err: unknown) => {
    throw new StartupError(startAppAdvice(err));
  });
  let stopping = false;
  const stop = (signal: string, code: number): Promise<void> => {
    if (stopping) return Promise.resolve();
    stopping = true;
    log.info('stopping', { signal });
    return app.stop().then(
      () => process.exit(code),
      (err: unknown) => {
        log.error('stop failed', { err: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  process.on('SIGINT', () => void stop('SIGINT', 0));

  let demo: Awaited<ReturnType<typeof ensureDemoChannel>> | null = null;
  if (process.argv.includes('--demo')) {
    try {
      demo = await ensureDemoChannel(app, log);
    } catch (err) {
      // Stop what did start (origin, workers) before saying why.
      printFailure(`the demo channel did not start: ${err instanceof Error ? err.message : String(err)}`);
      await stop('start-up failure', 1);
      return;
    }
  }

  const base = `http://${config.httpHost}:${app.api.port}/graphql`;
  let text = `vlive is up.\n  GraphQL (HTTP and WebSocket): ${base}\n  Console (in a browser): http://${config.httpHost}:${app.api.port}/\n`;
  if (config.tokensFile === null) {
    text += '  Demo mode: no authentication (VLIVE_TOKENS_FILE is unset), listening on loopback only.\n';
  } else {
    text += `  Authentication: API tokens from ${config.tokensFile}.\n`;
  }
  if (demo !== null) {
    text += `  Demo channel ${demo.id} is LIVING.\n    play RTMP: ${demo.rtmp}\n`;
    if (demo.hls) text += `    play HLS:  ${demo.hls}\n`;
    text += `    e.g. ffplay ${demo.rtmp}   or   vlc ${demo.hls ?? demo.rtmp}\n`;
  }
  process.stdout.write(text);
}

/** The one line a failed start-up leaves on stderr. */
function printFailure(cause: string): void {
  process.stderr.write(`vlive: start-up failed: ${cause}\n`);
}

/** startApp's failures, with what to do about the common ones. */
function startAppAdvice(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { port?: number };
  const msg = err instanceof Error ? err.message : String(err);
  if (e.code === 'EADDRINUSE') {
    return `${msg}: another program holds that port. Stop it, or choose other ports with VLIVE_HTTP_PORT, VLIVE_RTMP_PORT and VLIVE_HLS_PORT`;
  }
  if (e.code === 'EACCES' || e.code === 'EROFS') return `${msg}: choose a writable data directory with VLIVE_DATA_DIR`;
  return msg;
}

main().catch((err: unknown) => {
  const cause = err instanceof StartupError ? err.message : err instanceof Error ? err.message : String(err);
  printFailure(cause);
  process.exit(1);
});
