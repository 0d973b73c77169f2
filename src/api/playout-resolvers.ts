/**
 * Resolvers of the playout part of schema.graphql (issue #21): nowPlaying and
 * upNext on a channel and on its status events, skipVirtualLive and
 * jumpVirtualLive; cutIn, takeLive and returnToPlaylist (live cut-ins);
 * lastCuePoint and the events' cuePoint (cue points). Merged into the others by resolvers.ts; the rules live in
 * src/channels/playout.ts.
 */
import type { CuePointView, CutInView, NowPlaying, StatusChange } from '../channels/events.js';
import type { PlayoutSwitch } from '../channels/playout.js';
import { entryView } from '../channels/live-items.js';
import type { ChannelService } from '../channels/service.js';
import { isActive, type LiveStatus } from '../channels/status.js';
import type { PlayoutCommand } from '../pool/playout-spec.js';
import { checkId } from '../names.js';
import type { VodRegistry } from '../vods/registry.js';
import { requireOperator, type Principal } from './auth.js';

/** Operators only, like every mutation. */
const operator =
  <A, R>(fn: (args: A) => R) =>
  (_: unknown, args: A, ctx: { principal: Principal }): R => {
    requireOperator(ctx.principal);
    return fn(args);
  };

interface NowPlayingView extends ItemView {
  index: number;
  startedAt: Date;
  endsAt: Date;
  positionSeconds: number;
  loop: number;
}

/** The item part of NowPlaying and UpNext. */
interface ItemView {
  item: unknown;
  name: string;
  live: { url: string; durationSeconds: number } | null;
}

export interface PlayoutResolverDeps {
  channels: ChannelService;
  vods: Pick<VodRegistry, 'get'>;
  /** The channel as the API shows it. */
  view: (id: string) => Promise<unknown>;
}

export function playoutResolvers(deps: PlayoutResolverDeps) {
  const { channels, vods } = deps;
  /** The VOD resource of an item; a deleted one (the slate played instead) shows its id. */
  const item = async (id: string): Promise<unknown> => (await vods.get(id)) ?? { id, name: id };
  /** An item of channel `channelId`: a VOD resource, one of its live items (by the live item's id), or a live-source entry of its programme (by the entry's id). */
  const itemView = async (channelId: string, id: string): Promise<ItemView> => {
    const vod = await vods.get(id);
    if (vod !== null) return { item: vod, name: vod.name, live: null };
    const rec = await channels.get(channelId);
    const entry = rec?.programme?.entries.find((e) => e.id === id && e.sourceUrl !== null);
    const live = rec?.liveItems.find((l) => l.id === id) ?? (entry === undefined ? undefined : { position: -1, sourceUrl: entry.sourceUrl ?? '', durationSeconds: entry.durationSeconds ?? 0 });
    if (live === undefined) return { item: { id, name: id }, name: id, live: null };
    const { vodResource, ...rest } = entryView({ index: live.position, kind: 'live', id, sourceUrl: live.sourceUrl, durationSeconds: live.durationSeconds });
    return { item: vodResource, ...rest };
  };
  const nowPlaying = async (channelId: string, np: NowPlaying | null): Promise<NowPlayingView | null> => {
    if (np === null) return null;
    const lengthS = (np.endsAt.getTime() - np.startedAt.getTime()) / 1000;
    const positionSeconds = Math.min(lengthS, Math.max(0, (Date.now() - np.startedAt.getTime()) / 1000));
    return { ...(await itemView(channelId, np.itemId)), index: np.index, startedAt: np.startedAt, endsAt: np.endsAt, positionSeconds, loop: np.loop };
  };
  const upNext = async (channelId: string, np: NowPlaying | null): Promise<unknown> =>
    np?.next == null ? null : { ...(await itemView(channelId, np.next.itemId)), index: np.next.index };
  /** Only a running channel has something on air. */
  const current = (v: { id: string; status: LiveStatus }): NowPlaying | null => (isActive(v.status) ? channels.nowPlaying(v.id) : null);
  const eventPlaying = (c: StatusChange): NowPlaying | null => c.playout ?? (isActive(c.status) ? channels.nowPlaying(c.id) : null);
  const switched = async (id: string, sw: PlayoutSwitch) => ({ switchAt: sw.at, index: sw.index, item: await item(sw.itemId), virtualLive: await deps.view(id) });
  const command = async (id: string, cmd: PlayoutCommand) => switched(id, await channels.playout(id, cmd));
  const cutIn = (v: { id: string; status: LiveStatus }): CutInView | null => (isActive(v.status) ? channels.cutIn(v.id) : null);
  const cuePoint = async (c: CuePointView | null): Promise<unknown> => (c === null ? null : { ...c, item: await item(c.itemId) });
  return {
    VirtualLive: {
      nowPlaying: (v: { id: string; status: LiveStatus }) => nowPlaying(v.id, current(v)),
      upNext: (v: { id: string; status: LiveStatus }) => upNext(v.id, current(v)),
      cutIn,
      lastCuePoint: (v: { id: string; status: LiveStatus }) => cuePoint(isActive(v.status) ? channels.lastCuePoint(v.id) : null),
    },
    StatusChange: {
      nowPlaying: (c: StatusChange) => nowPlaying(c.id, eventPlaying(c)),
      upNext: (c: StatusChange) => upNext(c.id, eventPlaying(c)),
      cutIn: (c: StatusChange) => (c.cutIn !== undefined ? c.cutIn : cutIn(c)),
      cuePoint: (c: StatusChange) => cuePoint(c.cuePoint ?? null),
    },
    Mutation: {
      skipVirtualLive: operator((a: { id: string }) => command(checkId('id', a.id), { kind: 'skip' })),
      jumpVirtualLive: operator((a: { id: string; index: number }) => command(checkId('id', a.id), { kind: 'jump', index: a.index })),
      takeLive: operator((a: { id: string; url: string }) => channels.takeLive(checkId('id', a.id), a.url)),
      returnToPlaylist: operator(async (a: { id: string; mode: 'RESUME' | 'WALLCLOCK' }) => {
        const id = checkId('id', a.id);
        return switched(id, await channels.returnToPlaylist(id, a.mode === 'WALLCLOCK' ? 'wallclock' : 'resume'));
      }),
    },
  };
}
