/**
 * Frames out, counted without decoding: the feeders note each frame's output
 * time as they push it, and the sink's position (its running time) says
 * which of them it has passed. So the count is what really left, not what
 * is queued in front of the sink.
 */
export class FrameCounter {
  readonly #inFlight: number[] = [];
  #head = 0;
  #passed = 0;

  get passed(): number {
    return this.#passed;
  }

  /** A frame pushed with output time `timeMs`. */
  pushed(timeMs: number): void {
    this.#inFlight.push(timeMs);
  }

  /** The sink's running time is `positionMs`: every frame up to it has passed. */
  observe(positionMs: number): void {
    while (this.#head < this.#inFlight.length && (this.#inFlight[this.#head] ?? Infinity) <= positionMs) {
      this.#head += 1;
      this.#passed += 1;
    }
    // Drop what has passed now and then, not on every frame.
    if (this.#head > 1024) {
      this.#inFlight.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
