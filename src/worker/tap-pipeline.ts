/**
 * A channel's tap: recording and snapshots, in a GStreamer pipeline of its
 * own that reads the channel's output back from the origin. Kept apart from
 * the live pipeline on purpose: GStreamer's tee hands a branch's error back
 * upstream, so a full disk in a recording branch of the live pipeline would
 * stop the live output. Here a fault ends the tap only; the host reports a
 * warning and starts a new tap later. The source is still pulled once: the
 * origin is ours.
 *
 * Recording: splitmuxsink, one MP4 per segment, finalised when it closes.
 * Snapshots: only keyframes reach an appsink that keeps the latest one;
 * every interval the worker pulls it, decodes it alone (SnapshotDecoder) and
 * renames the JPEG over the channel's snapshot file, so a reader never sees
 * a half-written JPEG.
 */
import { mkdirSync, statSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../log.js';
import type { TapEvent, TapSpec } from '../pool/pipeline-spec.js';
import { readMp4, trackSeconds } from '../media/mp4.js';
import { describeBusError } from '../gst/bus-errors.js';
import { Pipeline, type BusMessage, type GstElement } from '../gst/native.js';
import { setRtmpLocation } from '../gst/rtmp2.js';
import { keyframeCaps, type SnapshotDecoder } from './snapshot-decoder.js';
import { render, type TemplateName, type Templates } from '../gst/templates.js';

/** How long a stop waits for the last segment to be finalised (EOS through the muxer). */
const finaliseTimeoutMs = 3000;

export interface TapDeps {
  readonly channelId: string;
  readonly spec: TapSpec;
  readonly templates: Templates;
  readonly decoder: SnapshotDecoder;
  /** Parts with a warning up, shared with the taps before and after this one: only those get a 'cleared' event. */
  readonly warned: Set<'recording' | 'snapshot'>;
  readonly log: Logger;
  readonly onEvent: (event: TapEvent) => void;
  /** Called once when the tap fails; it is already stopped then. */
  readonly onFailed: (part: 'recording' | 'snapshot', message: string) => void;
}

/** The launch text of a tap, from fixed templates and integers only. */
export function tapLaunch(spec: TapSpec, templates: Templates): string {
  const t = (name: TemplateName, values?: Record<string, number>): string => render(templates[name], values);
  const parts = [t('tap-source')];
  if (spec.hasVideo) parts.push(t('tap-video'));
  if (spec.recording !== null) {
    parts.push(t('tap-record', { ns: spec.recording.segmentSeconds * 1_000_000_000 }));
    if (spec.hasVideo) parts.push(t('tap-record-video'));
    if (spec.hasAudio) parts.push(t('tap-record-audio'));
  } else if (spec.hasAudio) {
    parts.push(t('tap-audio-drop'));
  }
  if (spec.snapshot !== null && spec.hasVideo) parts.push(t('tap-snapshot'));
  return parts.join(' ');
}

export class TapPipeline {
  readonly #deps: TapDeps;
  #pipeline: Pipeline | null = null;
  #keyframes: GstElement | null = null;
  #snapping = false;

  #timer: NodeJS.Timeout | null = null;
  /** Wall ms when the tap reached PLAYING: segment start times are this plus their running time. */
  #playingAtMs: number | null = null;
  #opened = new Map<string, number>();
  #done = false;
  #eos: (() => void) | null = null;
  #snapshotDir = '';
  /** Closed segments being measured; stop() waits for them so none is lost. */
  readonly #reporting = new Set<Promise<void>>();

  constructor(deps: TapDeps) {
    this.#deps = deps;
  }

  start(): void {
    const { spec } = this.#deps;
    let pipeline: Pipeline;
    try {
      pipeline = Pipeline.parse(tapLaunch(spec, this.#deps.templates));
      setRtmpLocation(pipeline.element('src'), spec.url, 'tap');
      if (spec.recording !== null) {
        const dir = join(spec.recording.dir, String(Date.now()));
        mkdirSync(dir, { recursive: true });
        pipeline.element('rec').set('location', join(dir, 'seg-%05d.mp4'));
      }
      if (spec.snapshot !== null && spec.hasVideo) {
        this.#snapshotDir = dirname(spec.snapshot.file);
        mkdirSync(this.#snapshotDir, { recursive: true });
        this.#keyframes = pipeline.element('snapout');
      }
    } catch (err) {
      this.#fail(spec.recording !== null ? 'recording' : 'snapshot', (err as Error).message);
      return;
    }
    this.#pipeline = pipeline;
    pipeline.pollBus((m) => this.#onBus(m));
    pipeline.play();
    if (this.#keyframes !== null && spec.snapshot !== null) {
      const snap = spec.snapshot;
      // The first snapshot as soon as a keyframe comes, then one per interval.
      void this.#snapshot(snap.file);
      this.#timer = setInterval(() => void this.#snapshot(snap.file), snap.intervalSeconds * 1000);
    }
  }

  #onBus(m: BusMessage): void {
    if (m.type === 'eos') {
      if (this.#eos !== null) this.#eos();
      // Not asked for: the channel's stream left the origin under us.
      else this.#fail(this.#mainPart(), 'the channel\'s stream at the origin ended');
      return;
    }
    if (this.#done) return;
    switch (m.type) {
      case 'error': {
        // Finalising after a fence cut the publish: the origin may end the tap's
        // source under it. The EOS already sent still closes the segment; the
        // stop's timeout bounds the wait if it cannot.
        if (this.#eos !== null) {
          this.#deps.log.info('tap error while finalising, ignored', { channel: this.#deps.channelId, error: describeBusError(m) });
          return;
        }
        const part = /^(rec|recvq|recaq|sink)/.test(m.source) || m.source.startsWith('splitmux') ? 'recording' : /^snap/.test(m.source) ? 'snapshot' : this.#mainPart();
        this.#fail(part, describeBusError(m));
        return;
      }
      case 'state-changed':
        if (/^pipeline\d+$/.test(m.source) && m.newState === 'GST_STATE_PLAYING' && this.#playingAtMs === null) this.#playingAtMs = Date.now();
        return;
      case 'element':
        this.#onElement(m.structure, m.fields);
        return;
      default:
        return;
    }
  }

  #mainPart(): 'recording' | 'snapshot' {
    return this.#deps.spec.recording !== null ? 'recording' : 'snapshot';
  }

  #onElement(structure: string, fields: Readonly<Record<string, unknown>>): void {
    const location = typeof fields['location'] === 'string' ? fields['location'] : null;
    const runningNs = typeof fields['running-time'] === 'number' ? fields['running-time'] : Number(fields['running-time'] ?? NaN);
    if (structure === 'splitmuxsink-fragment-opened' && location !== null) {
      this.#opened.set(location, Number.isFinite(runningNs) ? runningNs : 0);
      this.#clearWarning('recording');
    } else if (structure === 'splitmuxsink-fragment-closed' && location !== null) {
      this.#opened.delete(location);
      const endNs = Number.isFinite(runningNs) ? runningNs : 0;
      const p: Promise<void> = this.#segmentClosed(location, endNs).finally(() => this.#reporting.delete(p));
      this.#reporting.add(p);
    }
  }

  /**
   * Reports a closed segment. Its duration is read from the file itself (the
   * longest track, as a player shows it); its start is its end (the running
   * time splitmuxsink gives at the close) minus that duration. Not the running
   * time at the open: the origin sends a joining tap its cached GOP in a
   * burst, so the first segment holds media from before the tap started.
   */
  async #segmentClosed(location: string, endNs: number): Promise<void> {
    try {
      const sizeBytes = statSync(location).size;
      const file = await readMp4(location);
      const durationSeconds = Math.max(0, ...file.tracks.map((t) => trackSeconds(t)));
      this.#deps.onEvent({
        kind: 'segment',
        path: location,
        startedAtMs: Math.round((this.#playingAtMs ?? Date.now()) + endNs / 1e6 - durationSeconds * 1000),
        durationSeconds,
        sizeBytes,
      });
    } catch (err) {
      this.#deps.log.warn('recording segment not listed', { channel: this.#deps.channelId, err: (err as Error).message });
    }
  }

  /** One snapshot: the latest keyframe, decoded alone, renamed over `file`. A fault is a warning; the next interval tries again. */
  async #snapshot(file: string): Promise<void> {
    const sink = this.#keyframes;
    if (sink === null || this.#snapping || this.#done) return;
    this.#snapping = true;
    try {
      const sample = await sink.pull();
      if (sample === null || this.#done) return;
      const part = `${file}.part`;
      await this.#deps.decoder.decode(sample.data, keyframeCaps(sample.caps), part);
      await rename(part, file);
      this.#clearWarning('snapshot');
      this.#deps.onEvent({ kind: 'snapshot', takenAtMs: Date.now() });
    } catch (err) {
      if (!this.#done) {
        this.#deps.warned.add('snapshot');
        this.#deps.onEvent({ kind: 'warning', part: 'snapshot', message: `snapshot: ${(err as Error).message}` });
      }
    } finally {
      this.#snapping = false;
    }
  }

  #clearWarning(part: 'recording' | 'snapshot'): void {
    if (this.#deps.warned.delete(part)) this.#deps.onEvent({ kind: 'warning', part, message: null });
  }

  #fail(part: 'recording' | 'snapshot', message: string): void {
    if (this.#done) return;
    this.#halt();
    this.#deps.log.warn('tap failed', { channel: this.#deps.channelId, part, error: message });
    this.#deps.onFailed(part, message);
  }

  #halt(): void {
    this.#done = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    void this.#pipeline?.stop();
  }

  /**
   * Stops the tap. With recording on, EOS first, so the open segment is
   * finalised into a playable file, then NULL.
   */
  async stop(): Promise<void> {
    if (this.#done || this.#pipeline === null) {
      this.#halt();
      return;
    }
    const pipeline = this.#pipeline;
    if (this.#deps.spec.recording !== null && this.#playingAtMs !== null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, finaliseTimeoutMs);
        this.#eos = () => {
          clearTimeout(timer);
          resolve();
        };
        pipeline.sendEOS();
      });
    }
    this.#halt();
    await Promise.all([...this.#reporting]);
  }
}
