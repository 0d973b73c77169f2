/**
 * The guide's plan of a channel run from a wall-clock programme (issue #22
 * item 1): a `PlanSource` (programme.ts) giving each entry's items at their
 * wall-clock times and the filler between, from the end of the item on air
 * to the end of the window.
 *
 * Each item lasts what the worker last reported for it on this channel, else
 * its probe's shortest track (programme.ts's rule), and is cut where the
 * programme cuts it: at its entry's duration or the next entry's start. A
 * single-file entry's ad breaks are placed from its start, before its cut.
 *
 * Owns: nothing. Imports the planner (schedule) and programme.ts's types.
 */
import { parseBreaks, type StoredBreak } from '../channels/ad-breaks.js';
import { playlistOf } from '../channels/repository.js';
import { liveItemName } from '../channels/live-items.js';
import { planOf } from '../schedule/programme-service.js';
import { occurrences } from '../schedule/programme-plan.js';
import { expectedMs, placeBreaks, programmeLimits, type PlanSource, type ProgrammeDeps, type ProgrammeEntry } from './programme.js';

export function programmePlan(played: ProgrammeDeps['played'], now: () => number = Date.now): PlanSource {
  return ({ rec, onAir, window }) => {
    const p = rec.programme;
    if (p === null || rec.sourceType !== 'VOD') return [];
    const from = Math.max(onAir?.endsAt.getTime() ?? now(), window.from.getTime());
    const to = window.to.getTime();
    const list = playlistOf(rec);
    const plan = planOf(p);
    const out: ProgrammeEntry[] = [];
    const add = (start: number, stop: number, vodId: string, declared: readonly StoredBreak[] = []): void => {
      const vod = list.find((v) => v.id === vodId);
      if (vod === undefined || stop <= from || start >= to || stop <= start || out.length >= programmeLimits.maxPlannedPerChannel) return;
      out.push({ start: new Date(Math.max(start, from)), stop: new Date(stop), title: vod.name, kind: 'PLANNED', vodResourceId: vod.id, index: list.indexOf(vod), breaks: placeBreaks(declared, start, stop) });
    };
    for (const o of occurrences(plan, from, to)) {
      let at = o.startMs;
      const entry = p.entries[o.entry];
      // A live-source entry: its source, titled by its masked URL, for its time.
      if (entry?.sourceUrl != null && o.endMs > from && o.startMs < to && out.length < programmeLimits.maxPlannedPerChannel) {
        out.push({ start: new Date(Math.max(o.startMs, from)), stop: new Date(o.endMs), title: liveItemName(entry.sourceUrl), kind: 'PLANNED', vodResourceId: null, index: null, breaks: [] });
        at = o.endMs;
      }
      for (const [k, id] of (plan.entries[o.entry]?.items ?? []).entries()) {
        const vod = list.find((v) => v.id === id);
        if (vod === undefined || at >= o.endMs) break;
        const stop = Math.min(at + expectedMs(played, rec.id, vod), o.endMs);
        // A single-file entry's breaks are its (first) item's.
        add(at, stop, id, k === 0 && entry !== undefined ? parseBreaks(entry.breaks) : []);
        at = stop;
      }
      // The filler, as one entry (its first item's), to the next entry's start (the window's end after a dated programme's last).
      const filler = p.fillers[0];
      if (filler !== undefined) add(at, Math.min(o.untilMs, to), filler.vodResourceId);
    }
    return out;
  };
}
