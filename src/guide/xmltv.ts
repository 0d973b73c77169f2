/**
 * The programme as XMLTV (xmltv.dtd, the format IPTV apps and guide grabbers
 * read) and as JSON. Pure: programmes in, text out.
 *
 * - Channel ids are `<channel id>.vlive`: stable, and shaped like the
 *   dotted ids XMLTV recommends, so they do not collide with other sources in
 *   an app that merges guides.
 * - Times are `YYYYMMDDhhmmss +0000` (UTC), XMLTV's format; whole seconds.
 * - An open-ended entry (a LIVE relay) has no end, but guide apps draw
 *   nothing without one: XMLTV gets the window's end as its `stop`; JSON
 *   keeps `stop: null`.
 * - Text is escaped for XML 1.0, and characters XML 1.0 cannot carry at all
 *   (C0 controls other than tab and newlines, lone surrogates, U+FFFE/FFFF) are
 *   dropped: names are checked at input, but the guide must stay well-formed
 *   whatever a row holds.
 */
import type { ChannelProgramme, ProgrammeEntry, ProgrammeWindow } from './programme.js';

export const xmltvChannelId = (id: string): string => `${id}.vlive`;

const notXmlChar = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

const entities: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** One pass per rule (a guide of 500 channels × 100 entries escapes 100,000 strings). */
export function xmlEscape(text: string): string {
  return text.replace(notXmlChar, '').replace(/[&<>"']/g, (c) => entities[c] ?? c);
}

/** XMLTV's date: `20261205183000 +0000`. */
export function xmltvTime(d: Date): string {
  const s = d.toISOString(); // 2026-12-05T18:30:00.000Z
  return `${s.slice(0, 4)}${s.slice(5, 7)}${s.slice(8, 10)}${s.slice(11, 13)}${s.slice(14, 16)}${s.slice(17, 19)} +0000`;
}

/** `channel` is escaped already (once per channel, not per entry). */
function programmeXml(channel: string, e: ProgrammeEntry, window: ProgrammeWindow): string {
  const stop = e.stop ?? window.to;
  return `  <programme start="${xmltvTime(e.start)}" stop="${xmltvTime(stop)}" channel="${channel}">\n    <title>${xmlEscape(e.title)}</title>\n  </programme>\n`;
}

/** The whole guide as an XMLTV document: every channel first, then every programme, as the DTD orders them. */
export function renderXmltv(programmes: readonly ChannelProgramme[], window: ProgrammeWindow): string {
  let out = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE tv SYSTEM "xmltv.dtd">\n<tv generator-info-name="vlive">\n';
  for (const p of programmes) out += `  <channel id="${xmlEscape(xmltvChannelId(p.id))}">\n    <display-name>${xmlEscape(p.name)}</display-name>\n  </channel>\n`;
  for (const p of programmes) {
    const channel = xmlEscape(xmltvChannelId(p.id));
    for (const e of p.entries) out += programmeXml(channel, e, window);
  }
  return `${out}</tv>\n`;
}

/** The same guide as JSON (the shape README documents). */
export function renderJson(programmes: readonly ChannelProgramme[], window: ProgrammeWindow): string {
  return JSON.stringify({
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    channels: programmes.map((p) => ({
      id: p.id,
      xmltvId: xmltvChannelId(p.id),
      name: p.name,
      programme: p.entries.map((e) => ({
        start: e.start.toISOString(),
        stop: e.stop?.toISOString() ?? null,
        title: e.title,
        kind: e.kind,
        vodResourceId: e.vodResourceId,
        index: e.index,
        breaks: (e.breaks ?? []).map((b) => ({ id: b.id, at: b.at.toISOString(), offsetSeconds: b.offsetSeconds, durationSeconds: b.durationSeconds })),
      })),
    })),
  });
}
