/**
 * A pass that runs one at a time: asked for while one runs, it runs once
 * more right after (any number of requests meanwhile coalesce into that one).
 * For loops that are both timed and poked by events (the cluster heartbeat,
 * the webhook outbox): a poke is never lost and never runs beside a pass.
 */
export class SerialPass {
  #current: Promise<void> | null = null;
  #again = false;
  #stopped = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  get stopped(): boolean {
    return this.#stopped;
  }

  run(): void {
    if (this.#stopped) return;
    if (this.#current !== null) {
      this.#again = true;
      return;
    }
    this.#current = this.pass()
      .catch(this.onError)
      .finally(() => {
        this.#current = null;
        if (this.#again) {
          this.#again = false;
          this.run();
        }
      });
  }

  /** No pass after this; resolves when the one in flight (if any) is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#current;
  }
}
