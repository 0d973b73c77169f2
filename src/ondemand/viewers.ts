/**
 * Who plays each stream at the origin, by nginx client id. on_play and
 * on_play_done keep it current; a periodic /stat read puts it right when a
 * notification was lost (nginx restarted, a callback failed).
 */
export class ViewerBook {
  /** channel → client id → when on_play announced it (ms), 0 when only /stat saw it. */
  readonly #players = new Map<string, Map<string, number>>();

  count(channel: string): number {
    return this.#players.get(channel)?.size ?? 0;
  }

  /** Channels with players, or that had some since the last reconcile (then 0). */
  entries(): [string, number][] {
    return [...this.#players].map(([id, set]) => [id, set.size]);
  }

  /** Returns true when the count changed. */
  add(channel: string, clientId: string, nowMs: number): boolean {
    let set = this.#players.get(channel);
    if (!set) {
      set = new Map();
      this.#players.set(channel, set);
    }
    const had = set.has(clientId);
    set.set(clientId, nowMs);
    return !had;
  }

  /** Returns true when the count changed. */
  remove(channel: string, clientId: string): boolean {
    return this.#players.get(channel)?.delete(clientId) ?? false;
  }

  forget(channel: string): void {
    this.#players.delete(channel);
  }

  /**
   * Makes the book what /stat lists (stream → player client ids). A player
   * announced by on_play within `graceMs` stays even when /stat does not list
   * it yet: nginx lets it join only after our answer, and the read may have
   * been made before. `stat` must hold channels only (players may ask for any
   * name). Returns the channels whose count changed.
   */
  reconcile(stat: ReadonlyMap<string, readonly string[]>, nowMs: number, graceMs: number): string[] {
    const changed: string[] = [];
    const channels = new Set([...this.#players.keys(), ...[...stat].filter(([, ids]) => ids.length > 0).map(([s]) => s)]);
    for (const channel of channels) {
      const before = this.#players.get(channel) ?? new Map<string, number>();
      const listed = stat.get(channel) ?? [];
      const after = new Map<string, number>(listed.map((id) => [id, before.get(id) ?? 0]));
      for (const [id, at] of before) if (!after.has(id) && nowMs - at < graceMs) after.set(id, at);
      if (after.size !== before.size) changed.push(channel);
      // Channels without players leave the book: it stays as small as the audience.
      if (after.size > 0) this.#players.set(channel, after);
      else this.#players.delete(channel);
    }
    return changed;
  }
}
