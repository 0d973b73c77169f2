/**
 * A throwaway nginx-rtmp relay for tests that need a live rtmp:// source or
 * a plain receiving origin: the product's own ManagedOrigin, in a scratch dir
 * on free ports. Returns the base URL (…/live) and a stop function.
 */
import { ManagedOrigin } from '../../src/origin/nginx.js';
import { freePort } from './ports.js';

export async function startRelay(root: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const rtmpPort = await freePort();
  const origin = new ManagedOrigin({ dataDir: root, rtmpPort, hlsPort: await freePort() });
  await origin.start();
  return { url: `rtmp://127.0.0.1:${rtmpPort}/live`, stop: () => origin.stop() };
}
