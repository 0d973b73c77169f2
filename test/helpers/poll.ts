/** Polling for a condition the API only shows when asked (no event carries it), every 250 ms. */

/** Reads until `ok` holds, and returns that reading; throws naming `what` and the last reading after `timeoutMs`. */
export async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((res) => setTimeout(res, 250));
  }
}
