/**
 * Reads nginx-rtmp's `rtmp_stat all` XML. The document is machine-written
 * and flat enough that a few regular expressions over each <stream> block
 * are safer than a hand-rolled XML parser; user-supplied text in it
 * (flashver, urls) is escaped by the module, so it cannot forge tags.
 */

export interface StreamStat {
  readonly name: string;
  /** A publisher is connected to the stream. */
  readonly publishing: boolean;
  /** The stream has started (nginx-rtmp sets it when the publisher starts). */
  readonly active: boolean;
  readonly bytesIn: number;
  /** Publisher and players together. */
  readonly clients: number;
  /** nginx's id of the publishing connection: the same id across time means one publish session. */
  readonly publisherId: string | null;
  /** nginx client ids of the players (every client but the publisher); the ids on_play reports. */
  readonly players: readonly string[];
}

function blocks(xml: string, tag: string): string[] {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  return [...xml.matchAll(re)].map((m) => m[1] ?? '');
}

function firstText(xml: string, tag: string): string | null {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1] ?? null;
}

/** Streams of one application, by name. */
export function parseStat(xml: string, app: string): Map<string, StreamStat> {
  return parseStatByApp(xml).get(app) ?? new Map();
}

/** Streams by application, then by name: one parse serves every application. */
export function parseStatByApp(xml: string): Map<string, Map<string, StreamStat>> {
  const apps = new Map<string, Map<string, StreamStat>>();
  for (const application of blocks(xml, 'application')) {
    const app = firstText(application, 'name');
    if (app === null) continue;
    const out = apps.get(app) ?? new Map<string, StreamStat>();
    apps.set(app, out);
    for (const stream of blocks(application, 'stream')) {
      const name = firstText(stream, 'name');
      if (name === null) continue;
      const clients = blocks(stream, 'client');
      const players = clients.filter((c) => !c.includes('<publishing/>')).flatMap((c) => firstText(c, 'id') ?? []);
      const publisher = clients.find((c) => c.includes('<publishing/>'));
      // Stream-level counters follow the stream's <name>; client blocks
      // carry their own, so drop them before reading the stream's.
      const own = stream.replace(/<client>[\s\S]*?<\/client>/g, '');
      out.set(name, {
        name,
        publishing: own.includes('<publishing/>'),
        active: own.includes('<active/>'),
        bytesIn: Number(firstText(own, 'bytes_in') ?? 0),
        clients: Number(firstText(own, 'nclients') ?? 0),
        publisherId: publisher === undefined ? null : firstText(publisher, 'id'),
        players,
      });
    }
  }
  return apps;
}
