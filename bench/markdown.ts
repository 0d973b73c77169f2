/**
 * The report in markdown: medians with their spread over the runs, the
 * summary and ratios from the medians, the origin's share with and without
 * HLS, and who kept the machine busy at each step.
 */
import { repoRoot } from '../src/paths.js';
import type { Spread, StepSummary } from './aggregate.js';
import type { Kind } from './options.js';
import { principalHls, type Report } from './report.js';
import { CPU_GROUP_NAMES, CPU_GROUPS, SATURATED_BUSY_SHARE } from './saturation.js';
import { median } from './stats.js';

const KIND_TITLES: Record<Kind, string> = {
  vod: 'VOD channels (the clip looped from a file)',
  relay: 'Relay channels (a live RTMP stream republished)',
};

const MiB = 1024 * 1024;
const mib = (b: number | null | undefined, digits = 1) => (b === null || b === undefined ? '–' : (b / MiB).toFixed(digits));
const fixed = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : String(Math.round(v)));
const times = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${v.toFixed(1)}×`);
const pct = (share: number | null | undefined) => (share === null || share === undefined ? '–' : `${(share * 100).toFixed(0)} %`);

/** "median (min–max)", or the one value when the runs agree or there was one. */
function cell(s: Spread | null, format: (v: number) => string): string {
  if (s === null) return '–';
  const [m, lo, hi] = [format(s.median), format(s.min), format(s.max)];
  return lo === hi ? m : `${m} (${lo}–${hi})`;
}

const byStep = (a: StepSummary, b: StepSummary) => a.channels - b.channels || a.side.localeCompare(b.side) || Number(b.hls) - Number(a.hls);
/** VOD before relay, as they are measured. */
const byKindThenStep = (a: StepSummary, b: StepSummary) => Number(a.kind === 'relay') - Number(b.kind === 'relay') || byStep(a, b);
const onOff = (hls: boolean) => (hls ? 'on' : 'off');

function header(report: Report, L: string[]): void {
  const m = report.machine;
  const s = report.settings;
  const v = report.vlive;
  const commit = v.commit === null ? 'an unknown commit (not a git tree)' : `commit \`${v.commit}\``;
  const dirty =
    v.dirty === true ? ' — **dirty**: the tree had uncommitted changes to tracked files, so the build may differ from the commit' : v.dirty === null ? ' (clean or dirty: unknown)' : '';
  L.push(`# vlive against one FFmpeg process per channel`);
  L.push('');
  L.push(
    `Run ${report.startedAt}${report.complete ? '' : ' (**incomplete**: interrupted or still running)'}; vlive ${commit}${dirty}` +
      `${v.dir !== repoRoot ? ` (built in ${v.dir})` : ''}. ` +
      `Machine: ${m.cores} cores (${m.cpuModel}), ${mib(m.memoryBytes, 0)} MiB, Linux ${m.kernel.split(' ')[0] ?? ''}, ` +
      `Node ${m.node}, GStreamer ${m.gstreamer ?? '?'}, ffmpeg ${m.ffmpeg ?? '?'}, nginx ${m.nginx ?? '?'}.`,
  );
  L.push('');
  const kinds = s.kinds
    .map((k) => (k === 'vod' ? `VOD steps ${s.steps.join(', ')}${s.defaultSteps ? ' (default)' : ' (BENCH_STEPS)'}` : `relay steps ${s.relaySteps.join(', ')}`))
    .join('; ');
  const hls =
    s.hls === 'on' && s.hlsBothAtVodStep !== null
      ? `HLS on at the origin, and off as well at the VOD step N=${s.hlsBothAtVodStep}`
      : s.hls === 'both'
        ? 'every step with HLS on and off at the origin'
        : `HLS ${s.hls} at the origin`;
  const limit = s.apiStartStopLimit;
  L.push(
    `Media: ${s.clip.width}×${s.clip.height} ${s.clip.fps} fps H.264 at ${s.clip.videoKbps} kbit/s + AAC ${s.clip.audioKbps} kbit/s, ` +
      `${s.clip.seconds} s MP4 looped, copied (no transcoding). ${kinds}. ` +
      `**Each side was measured ${s.runs} time${s.runs === 1 ? '' : 's'} at each step**, each from a fresh start: figures are the median, with the spread (min–max) in brackets where the runs differ. ` +
      `${s.startConcurrency} starts in flight, at most ${s.startsPer10s} per 10 s, on both sides (vlive's API allows ${limit.perWindow} starts and stops per token per ${limit.windowMs / 1000} s: ` +
      `\`apiLimits.startStopPerWindow\` in src/api/limits.ts); ${s.settleSeconds} s settle; ${s.windowSeconds} s steady window; ` +
      `${s.receivers} receivers per step (seed ${s.seed}); ${hls}.`,
  );
  L.push('');
}

function summary(report: Report, kind: Kind, L: string[]): void {
  const s = report.settings;
  const sum = report.summary[kind];
  if (sum === undefined) return;
  L.push(`### ${KIND_TITLES[kind]}`);
  L.push('');
  for (const side of s.sides) {
    const why = report.stoppedSides[kind]?.[side];
    L.push(
      `- **${side}**: largest N with zero stutter in every run: **${sum.largestZeroStutterChannels[side] ?? 'none'}**; ` +
        `with median stutter under ${(s.stopStutterShare * 1000).toFixed(0)} ‰ of listening time: **${sum.largestUnderThresholdChannels[side] ?? 'none'}**` +
        `${why !== undefined ? ` (stopped stepping: ${why})` : ''}.`,
    );
  }
  const r = sum.ratios;
  if (r.length > 0) {
    const at = (f: (x: (typeof r)[number]) => number | null) => r.map((x) => `${times(f(x))} at ${x.channels}`).join(', ');
    L.push(
      `- PSS per channel, ffmpeg / vlive: median **${times(sum.medianRatios.pssPerChannelFfmpegOverVlive)}** (${at((x) => x.pssPerChannelFfmpegOverVlive)}).`,
    );
    if (kind === 'relay') {
      L.push(
        `- **Relay CPU per channel, vlive / ffmpeg: median ${times(sum.medianRatios.cpuPerChannelMinuteVliveOverFfmpeg)}** ` +
          `(${at((x) => x.cpuPerChannelMinuteVliveOverFfmpeg)}); below 1× vlive's relays cost less CPU than ffmpeg's.`,
      );
    } else {
      L.push(
        `- CPU per channel-minute, ffmpeg / vlive: median **${times(sum.medianRatios.cpuPerChannelMinuteFfmpegOverVlive)}** (${at((x) => x.cpuPerChannelMinuteFfmpegOverVlive)}).`,
      );
    }
  }
  for (const side of s.sides) {
    const fit = sum.pssFit[side];
    if (fit !== null && fit !== undefined) {
      L.push(
        `- ${side}: total PSS ≈ ${mib(fit.fixedBytes)} MiB + ${mib(fit.marginalBytesPerChannel, 2)} MiB × N ` +
          `(least squares over the steps' medians; the per-channel figure at small N carries the fixed part).`,
      );
    }
  }
  L.push(
    `- Start latency p50 (median over steps): ${s.sides.map((side) => `${side} ${ms(sum.medianStartLatencyP50Ms[side])} ms`).join(', ')}; ` +
      `first packet at the origin p50: ${s.sides.map((side) => `${side} ${ms(sum.medianFirstPacketLatencyP50Ms[side])} ms`).join(', ')}.`,
  );
  if (kind === 'relay') {
    L.push(
      `- Of that, the wait for the source's next keyframe (a relay goes live on a keyframe, and the upstream origin keeps none for a new player), p50: ` +
        `${s.sides.map((side) => `${side} ${ms(sum.medianSourceKeyframeWaitP50Ms[side])} ms`).join(', ')}; ` +
        `the start's latency after that keyframe, p50 / p99: ` +
        `${s.sides.map((side) => `${side} ${ms(sum.medianAfterKeyframeLatencyP50Ms[side])} / ${ms(sum.medianAfterKeyframeLatencyP99Ms[side])} ms`).join(', ')}.`,
    );
  }
  L.push(`- DTS regressions per loop boundary seen by the receivers: ${s.sides.map((side) => `${side} ${fixed(sum.dtsRegressionsPerLoop[side], 2)}`).join(', ')}.`);
  const saturated = report.steps.filter((x) => x.kind === kind && x.saturated).sort(byStep);
  if (saturated.length > 0) {
    L.push(
      `- **Saturated** (machine ≥ ${SATURATED_BUSY_SHARE * 100} % busy, median): ` +
        saturated.map((x) => `${x.side} N=${x.channels}${x.hls ? '' : ' HLS off'} (busiest: ${x.busiestGroup})`).join(', ') +
        '; see "Where the machine\'s CPU went".',
    );
  }
  L.push('');
}

function figures(steps: readonly StepSummary[], L: string[]): void {
  L.push(
    '| side | N | HLS | runs | up at end | PSS/ch MiB | PSS total MiB | origin PSS MiB | CPU s/ch·min | side CPU cores | origin CPU cores | origin CPU per ch, % of a core | machine busy | stutter s (‰; receivers stuttering; video / audio s) | DTS regr. / gaps / loops | start p50 / p99 ms | first packet p50 / p99 ms | start all s |',
  );
  L.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const x of [...steps].sort(byStep)) {
    const f = x.figures;
    L.push(
      `| ${x.side} | ${x.channels} | ${onOff(x.hls)} | ${x.runs} | ${cell(f.publishingAtEnd, (v) => String(v))}/${x.channels} | ` +
        `${cell(f.pssBytesPerChannel, (v) => mib(v, 2))} | ${cell(f.pssBytesTotal, (v) => mib(v))} | ${cell(f.originPssBytes, (v) => mib(v))} | ` +
        `${cell(f.cpuSecondsPerChannelMinute, (v) => v.toFixed(3))} | ${cell(f.cpuCores, (v) => v.toFixed(2))} | ${cell(f.originCpuCores, (v) => v.toFixed(2))} | ` +
        `${cell(f.originCpuCoresPerChannel, (v) => (v * 100).toFixed(2))} | ${cell(f.machineCpuBusy, pct)}${x.saturated ? ' **sat.**' : ''} | ` +
        `${cell(f.stutterSeconds, (v) => v.toFixed(2))} (${fixed((f.stutterShare?.median ?? 0) * 1000, 1)} ‰; ${x.stutteringReceivers}/${x.receivers}; ` +
        `${fixed(f.videoStutterSeconds?.median, 2)} / ${fixed(f.audioStutterSeconds?.median, 2)}) | ${x.dtsRegressions} / ${x.dtsGaps} / ${x.loopBoundariesObserved} | ` +
        `${cell(f.startLatencyP50Ms, ms)} / ${cell(f.startLatencyP99Ms, ms)} | ${cell(f.firstPacketLatencyP50Ms, ms)} / ${cell(f.firstPacketLatencyP99Ms, ms)} | ` +
        `${cell(f.startAllSeconds, (v) => v.toFixed(1))} |`,
    );
  }
  L.push('');
}

/** The origin's median cores per channel as % of one core. */
const perChannel = (x: StepSummary): string => {
  const c = x.figures.originCpuCoresPerChannel?.median;
  return c === undefined ? '–' : (c * 100).toFixed(2);
};

function originShare(report: Report, L: string[]): void {
  L.push("## The origin's share");
  L.push('');
  L.push(
    "Every row of the figures gives the origin nginx's CPU, in cores and per channel (% of one core per channel): both sides publish every channel to an " +
      'nginx-rtmp origin configured alike, so that cost is the same kind of cost on both sides and is not charged to either. ' +
      'In relay steps the origin also carries the upstream stream and one player of it per channel.',
  );
  L.push('');
  const pairs = report.steps.flatMap((on) => {
    const off = on.hls ? report.steps.find((x) => !x.hls && x.kind === on.kind && x.side === on.side && x.channels === on.channels) : undefined;
    return off === undefined ? [] : [{ on, off }];
  });
  if (pairs.length === 0) {
    L.push('HLS on and off were not both measured at any step in this run (BENCH_HLS).');
    L.push('');
    return;
  }
  L.push('| kind | side | N | origin CPU cores, HLS on | HLS off | per channel, % of a core: on / off | HLS\'s share of the origin\'s CPU |');
  L.push('|---|---|---:|---:|---:|---:|---:|');
  for (const { on, off } of pairs.sort((a, b) => byKindThenStep(a.on, b.on))) {
    const a = on.figures.originCpuCores?.median;
    const b = off.figures.originCpuCores?.median;
    const share = a === undefined || b === undefined || a === 0 ? null : (a - b) / a;
    L.push(
      `| ${on.kind} | ${on.side} | ${on.channels} | ${cell(on.figures.originCpuCores, (v) => v.toFixed(2))} | ${cell(off.figures.originCpuCores, (v) => v.toFixed(2))} | ` +
        `${perChannel(on)} / ${perChannel(off)} | ${pct(share)} |`,
    );
  }
  L.push('');
}

function machineCpu(report: Report, L: string[]): void {
  const cores = report.machine.cores;
  L.push("## Where the machine's CPU went");
  L.push('');
  L.push(
    `Cores each group of processes kept busy over the window (median over the runs), and its share of the machine's ${cores} cores. ` +
      `A step is **saturated** when the machine was at least ${SATURATED_BUSY_SHARE * 100} % busy (median); "runs" says in how many runs it was. ` +
      'Groups: ' +
      CPU_GROUPS.map((g) => `**${g}**, ${CPU_GROUP_NAMES[g]}`).join('; ') +
      '.',
  );
  L.push('');
  L.push(
    '**At a saturated step the observers starve too.** The receivers (ffprobe) and the benchmark\'s own Node process, which time-stamps every packet they print, ' +
      'wait for CPU like everything else; packets then reach the judge late, so part of the stutter and latency measured there is the observers\' own ' +
      'starvation, not the side\'s. Their share is in the receivers and bench columns: compare it with the side\'s before reading a saturated step\'s stutter.',
  );
  L.push('');
  L.push(`| kind | side | N | HLS | machine busy | saturated (runs) | busiest | ${CPU_GROUPS.join(' | ')} |`);
  L.push(`|---|---|---:|---|---:|---|---|${CPU_GROUPS.map(() => '---:').join('|')}|`);
  for (const x of [...report.steps].sort(byKindThenStep)) {
    const groups = CPU_GROUPS.map((g) => {
      const c = x.cpuCoresByGroup[g]?.median;
      return c === undefined ? '–' : `${c.toFixed(2)} (${pct(c / cores)})`;
    });
    L.push(
      `| ${x.kind} | ${x.side} | ${x.channels} | ${onOff(x.hls)} | ${cell(x.figures.machineCpuBusy, pct)} | ${x.saturated ? '**yes**' : 'no'} (${x.saturatedRuns}/${x.runs}) | ${x.busiestGroup} | ${groups.join(' | ')} |`,
    );
  }
  L.push('');
}

function vliveBreakdown(steps: readonly StepSummary[], L: string[]): void {
  const vlive = steps.filter((x) => x.side === 'vlive').sort(byKindThenStep);
  if (vlive.length === 0) return;
  L.push("### Where vlive's memory and CPU go");
  L.push('');
  L.push('| kind | N | HLS | service PSS MiB | workers PSS MiB | service CPU cores | workers CPU cores | busiest worker threads (cores) |');
  L.push('|---|---:|---|---:|---:|---:|---:|---|');
  for (const x of vlive) {
    const threads = Object.entries(x.workerThreadCpuCores)
      .slice(0, 5)
      .map(([name, c]) => `${name} ${c.toFixed(2)}`)
      .join(', ');
    L.push(
      `| ${x.kind} | ${x.channels} | ${onOff(x.hls)} | ${mib(x.pssBytesByRole['service'])} | ${mib(x.pssBytesByRole['workers'])} | ` +
        `${fixed(x.cpuCoresByRole['service'], 2)} | ${fixed(x.cpuCoresByRole['workers'], 2)} | ${threads} |`,
    );
  }
  L.push('');
}

/**
 * When each measurement's stalls happened, beside the bench's own late loop
 * turns: stalls on several receivers at one instant point at something they
 * share (the bench's loop, the origin), one receiver's at its own stream.
 */
function stallTimes(report: Report, L: string[]): void {
  const rows = report.measurements.flatMap((r) => {
    const stalls = r.receivers.flatMap((v) => [...(v.video?.stallsAt ?? []), ...(v.audio?.stallsAt ?? [])]).sort((a, b) => a.atSeconds - b.atSeconds);
    if (stalls.length === 0) return [];
    const at = stalls.slice(0, 12).map((x) => `${x.atSeconds.toFixed(1)} (${x.ms})`);
    const loop = r.benchLoopStalls.map((x) => `${x.atSeconds.toFixed(1)} (${x.lateMs})`).join(', ') || 'none';
    return [`| ${r.kind} | ${r.side} | ${r.channels} | ${r.run} | ${at.join(', ')}${stalls.length > at.length ? ', …' : ''} | ${loop} |`];
  });
  if (rows.length === 0) return;
  L.push('### When the receivers stalled');
  L.push('');
  L.push(
    "Seconds into the window, with each stall's length in ms beyond the two-frame tolerance (either track), and the benchmark's event loop coming back more than 20 ms late.",
  );
  L.push('');
  L.push('| kind | side | N | run | stalls at, s (ms) | bench loop late at, s (ms) |');
  L.push('|---|---|---:|---:|---|---|');
  L.push(...rows);
  L.push('');
}

function method(report: Report, L: string[]): void {
  const s = report.settings;
  L.push('## How it was measured');
  L.push('');
  L.push(
    [
      `- At each N the sides run one after the other, never together, each from a fresh start, ${s.runs} time${s.runs === 1 ? '' : 's'} (BENCH_RUNS), the sides taking turns: the vlive service (\`node dist/src/main.js\`, scratch data dir, free ports, its own managed nginx-rtmp) driven through GraphQL; or one ffmpeg process per channel publishing to an nginx-rtmp started by the same ManagedOrigin code with the same generated config.`,
      '- **VOD**: vlive runs N looping VOD channels of the clip; the baseline N `ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv` processes.',
      '- **Relay**: one more ffmpeg (`-re -stream_loop -1 -i clip.mp4 -c copy -f flv`) publishes the clip to the side\'s origin as stream `upstream`; vlive runs N ONLINE channels whose source is that stream, the baseline N `ffmpeg -i rtmp://…/upstream -c copy -f flv rtmp://…/relayN` processes. The upstream ffmpeg is charged to neither side (the **upstream** group).',
      '- **HLS off**: the origin is started without HLS (`VLIVE_ORIGIN_HLS=off` for the service, `hls: false` for the baseline\'s ManagedOrigin); the benchmark checks the service\'s generated nginx.conf says so.',
      '- **Median and spread**: each figure of a step is the median over its runs, with min–max beside it; counts (stuttering receivers, DTS regressions) are summed over the runs. The summary\'s ratios divide the two sides\' medians at each N and take the median over the steps.',
      '- **PSS**: sum of `Pss` in `/proc/PID/smaps_rollup` over the service and its workers, or over the ffmpeg processes, divided by the channels started; the origin is reported apart. Median of three samples in the window.',
      `- **CPU**: utime + stime deltas from \`/proc/PID/stat\` over the steady window, per channel per minute; the origin apart. "machine busy" is the whole machine (\`/proc/stat\`) over the window; every process group is measured the same way and "other" is what the machine's count leaves.${s.quietWaitSeconds > 0 ? ` Before each measurement the benchmark waits (up to ${s.quietWaitSeconds} s) for the machine to be under 15 % busy.` : ' This run did not wait for the machine to be quiet (BENCH_QUIET_WAIT_SECONDS=0).'}`,
      "- **Worker threads**: vlive's worker CPU by thread name (`/proc/PID/task/*/stat`), to show where it goes.",
      '- **Stutter**: `src/media/stutter.ts` (the one definition): the stall time of a player holding at most two frame durations of buffer, judged on the packet arrival times and DTS seen by independent receivers (`ffprobe` playing from the origin) on randomly sampled channels; summed over the receivers; a stream counts its worse track.',
      '- **DTS regressions**: packets whose DTS did not move forward from the previous packet of the same track, summed over both tracks and the receivers; **gaps**: forward DTS steps longer than two frame durations (holes in the timeline); "loops" is how many loop boundaries their listening time spanned.',
      "- **Start latency**: vlive from sending `startVirtualLive` to its answer, which comes once the channel is LIVING; ffmpeg from spawn to the origin reporting the publisher (the same condition vlive waits for). **First packet**: from the same instant to the origin's `/stat` first showing media bytes for the stream (read every " +
        `${s.statIntervalMs} ms, so up to that much late).`,
    ].join('\n'),
  );
  L.push('');
}

export function renderMarkdown(report: Report, plotFile: string): string {
  const L: string[] = [];
  header(report, L);
  L.push('## Summary');
  L.push('');
  for (const kind of report.settings.kinds) summary(report, kind, L);
  const other = report.measurements.map((r) => r.cpuCoresByGroup.other);
  if (other.length > 0) {
    L.push(
      `Other work on the machine during the windows (not ours): median ${fixed(median(other), 2)} cores, at most ${fixed(Math.max(...other), 2)} ` +
        `of ${report.machine.cores}; measurements with much of it are noisier, stutter and latency first.`,
    );
    L.push('');
  }
  const pauses = report.measurements.map((r) => r.benchGcMaxPauseMs);
  if (pauses.length > 0) {
    L.push(
      `The benchmark's own longest GC pause in a window: median ${ms(median(pauses))} ms, at most ${ms(Math.max(...pauses))} ms ` +
        `(each window starts with a full collection; the receivers' packets are timed on its event loop, so a pause there is a stall on every receiver at once).`,
    );
    L.push('');
  }
  L.push(`![PSS per channel and stutter against N, HLS ${onOff(principalHls(report.settings))}, medians](${plotFile})`);
  L.push('');
  L.push('## Figures');
  L.push('');
  for (const kind of report.settings.kinds) {
    const steps = report.steps.filter((x) => x.kind === kind);
    if (steps.length === 0) continue;
    L.push(`### ${KIND_TITLES[kind]}`);
    L.push('');
    figures(steps, L);
  }
  vliveBreakdown(report.steps, L);
  originShare(report, L);
  machineCpu(report, L);
  stallTimes(report, L);
  if (report.failedSteps.length > 0) {
    L.push('Measurements that could not run:');
    for (const f of report.failedSteps) L.push(`- ${f.kind} ${f.side} at ${f.channels} (HLS ${onOff(f.hls)}, run ${f.run}): ${f.error}`);
    L.push('');
  }
  method(report, L);
  return `${L.join('\n')}\n`;
}
