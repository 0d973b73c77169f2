/**
 * The service entry: load the config, start the app, and stop it gracefully
 * on SIGTERM or SIGINT. With --demo it also brings up the demo channel.
 */
import { startApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { ensureDemoChannel } from './demo.js';
import { createLogger } from './log.js';

const log = createLogger({ proc: 'vlive' });

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
  const app = await startApp(config, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    void app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('stop failed', { err: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const base = `http://${config.httpHost}:${app.api.port}/graphql`;
  process.stdout.write(`vlive is up.\n  GraphQL (HTTP and WebSocket): ${base}\n`);
  if (config.tokensFile === null) {
    process.stdout.write('  Demo mode: no authentication (VLIVE_TOKENS_FILE is unset), listening on loopback only.\n');
  } else {
    process.stdout.write(`  Authentication: API tokens from ${config.tokensFile}.\n`);
  }
  if (process.argv.includes('--demo')) {
    const demo = await ensureDemoChannel(app, log);
    process.stdout.write(`  Demo channel ${demo.id} is LIVING.\n    play RTMP: ${demo.rtmp}\n`);
    if (demo.hls) process.stdout.write(`    play HLS:  ${demo.hls}\n`);
    process.stdout.write(`    e.g. ffplay ${demo.rtmp}   or   vlc ${demo.hls ?? demo.rtmp}\n`);
  }
}

main().catch((err: unknown) => {
  log.error('start-up failed', { err: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
