/**
 * What the figures were measured on: the machine, the versions of everything
 * in the media path, and the vlive commit measured.
 */
import { execFile } from 'node:child_process';
import { availableParallelism, cpus, release, totalmem, version } from 'node:os';

export interface MachineInfo {
  readonly cores: number;
  readonly memoryBytes: number;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly node: string;
  readonly gstreamer: string | null;
  readonly ffmpeg: string | null;
  readonly nginx: string | null;
}

/** The measured vlive tree (BENCH_VLIVE_DIR). */
export interface MeasuredTree {
  readonly dir: string;
  /** `git rev-parse HEAD` there; null when it is not a git tree. */
  readonly commit: string | null;
  /**
   * Uncommitted changes to tracked files (`git status --porcelain
   * --untracked-files=no`) outside bench/results/: the build may then differ
   * from the commit. Untracked files (scratch) and the benchmarks' own
   * reports (each run rewrites a *-latest file) do not count. Null when unknown.
   */
  readonly dirty: boolean | null;
}

/** What a short command printed, or null when it failed. */
function output(cmd: string, args: readonly string[], cwd: string): Promise<{ stdout: string; stderr: string } | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000, cwd }, (err, stdout, stderr) => resolve(err === null ? { stdout, stderr } : null));
  });
}

/** Version banners go to stdout or stderr depending on the tool (nginx -v: stderr). */
const banner = (o: { stdout: string; stderr: string } | null): string => (o === null ? '' : `${o.stdout}${o.stderr}`);

export async function machineInfo(): Promise<MachineInfo> {
  const cwd = process.cwd();
  const [gst, ffmpeg, nginx] = await Promise.all([
    output('gst-inspect-1.0', ['--version'], cwd),
    output('ffmpeg', ['-hide_banner', '-version'], cwd),
    output('nginx', ['-v'], cwd),
  ]);
  return {
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    kernel: `${release()} ${version()}`,
    node: process.version,
    gstreamer: /GStreamer (\S+)/.exec(banner(gst))?.[1] ?? null,
    ffmpeg: /ffmpeg version (\S+)/.exec(banner(ffmpeg))?.[1] ?? null,
    nginx: /nginx\/(\S+)/.exec(banner(nginx))?.[1] ?? null,
  };
}

/** Read-only git in `dir`: which commit, and whether tracked files changed on top of it. */
export async function measuredTree(dir: string): Promise<MeasuredTree> {
  const [head, status] = await Promise.all([
    output('git', ['rev-parse', 'HEAD'], dir),
    output('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)bench/results'], dir),
  ]);
  // stdout only: a warning on stderr is not a change.
  return { dir, commit: head === null ? null : head.stdout.trim(), dirty: status === null ? null : status.stdout.trim() !== '' };
}
