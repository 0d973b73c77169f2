/**
 * The report's plot, as a self-contained SVG written by hand (no plotting
 * dependency): PSS per channel and stutter against N, medians over the runs,
 * both sides, VOD solid and relay dashed, N on a log axis since the steps
 * grow geometrically.
 */
import type { StepSummary } from './aggregate.js';
import type { Kind, SideName } from './options.js';

interface Series {
  readonly name: string;
  readonly color: string;
  readonly dash: string | null;
  readonly points: readonly { x: number; y: number }[];
}

const DASH: Record<Kind, string | null> = { vod: null, relay: '6 4' };

const COLORS: Record<SideName, string> = { vlive: '#1f77b4', ffmpeg: '#d62728' };
const W = 480;
const H = 320;
const M = { left: 64, right: 16, top: 36, bottom: 48 };

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** 1, 2 or 5 times a power of ten, so there are about `count` ticks up to max. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
}

const dashAttr = (s: Series): string => (s.dash === null ? '' : ` stroke-dasharray="${s.dash}"`);

function panel(title: string, yLabel: string, series: readonly Series[], xs: readonly number[], ox: number): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const logSpan = Math.log(xMax) - Math.log(xMin) || 1;
  const px = (x: number) => ox + M.left + (xs.length === 1 ? pw / 2 : ((Math.log(x) - Math.log(xMin)) / logSpan) * pw);
  const yMaxData = Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.y)));
  const step = niceStep(yMaxData > 0 ? yMaxData : 1, 5);
  const yMax = Math.ceil((yMaxData > 0 ? yMaxData * 1.05 : 1) / step) * step;
  const py = (y: number) => M.top + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<text x="${ox + W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let y = 0; y <= yMax + step / 2; y += step) {
    out.push(`<line x1="${ox + M.left}" x2="${ox + M.left + pw}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    const label = step < 1 ? y.toFixed(Math.ceil(-Math.log10(step))) : String(Math.round(y));
    out.push(`<text x="${ox + M.left - 6}" y="${py(y) + 4}" text-anchor="end" font-size="11">${label}</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${px(x)}" y="${M.top + ph + 16}" text-anchor="middle" font-size="11">${x}</text>`);
  }
  out.push(`<rect x="${ox + M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${ox + M.left + pw / 2}" y="${H - 10}" text-anchor="middle" font-size="12">channels (N, log scale)</text>`);
  out.push(
    `<text x="${ox + 16}" y="${M.top + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${ox + 16} ${M.top + ph / 2})">${esc(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length > 1) {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dashAttr(s)} points="${s.points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of s.points) out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
    // Top right: the lines start high on the left (fixed costs over few channels).
    const ly = M.top + 14 + i * 16;
    const lx = ox + M.left + pw - 110;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dashAttr(s)}/>`);
    out.push(`<text x="${lx + 22}" y="${ly}" font-size="12">${s.name}</text>`);
  });
  return out.join('\n');
}

/** `steps` at one HLS setting; one series per side and kind that has points. */
export function renderPlot(steps: readonly StepSummary[], sides: readonly SideName[], kinds: readonly Kind[]): string {
  const xs = [...new Set(steps.map((r) => r.channels))].sort((a, b) => a - b);
  const seriesOf = (value: (r: StepSummary) => number | null): Series[] =>
    kinds.flatMap((kind) =>
      sides.map((side) => ({
        name: `${side} ${kind}`,
        color: COLORS[side],
        dash: DASH[kind],
        points: steps
          .filter((r) => r.side === side && r.kind === kind)
          .sort((a, b) => a.channels - b.channels)
          .flatMap((r) => {
            const y = value(r);
            return y === null ? [] : [{ x: r.channels, y }];
          }),
      })),
    ).filter((series) => series.points.length > 0);
  const body =
    xs.length === 0
      ? '<text x="20" y="40">no results</text>'
      : [
          panel('PSS per channel', 'MiB per channel', seriesOf((r) => (r.figures.pssBytesPerChannel === null ? null : r.figures.pssBytesPerChannel.median / (1024 * 1024))), xs, 0),
          panel('Stutter seen by the receivers', 'seconds (sum over receivers)', seriesOf((r) => r.figures.stutterSeconds?.median ?? null), xs, W),
        ].join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H}" viewBox="0 0 ${2 * W} ${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${body}
</svg>
`;
}
