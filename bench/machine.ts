/** What the figures were measured on: the machine and the versions of everything in the media path. */
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
  /** The vlive commit measured, with "+dirty" when the tree had changes. */
  readonly commit: string | null;
  /** Where the measured vlive tree was. */
  readonly vliveDir: string;
}

/** Output (stdout and stderr together) of a short command, or null when it fails. */
function output(cmd: string, args: readonly string[], cwd: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000, cwd }, (err, stdout, stderr) => resolve(err === null ? `${stdout}${stderr}` : null));
  });
}

/** `vliveDir`: the tree whose service is measured, for its commit. */
export async function machineInfo(vliveDir: string): Promise<MachineInfo> {
  const [gst, ffmpeg, nginx, head, dirty] = await Promise.all([
    output('gst-inspect-1.0', ['--version'], vliveDir),
    output('ffmpeg', ['-hide_banner', '-version'], vliveDir),
    output('nginx', ['-v'], vliveDir),
    // Read-only git: which commit, and whether the tree had changes on top.
    output('git', ['rev-parse', '--short', 'HEAD'], vliveDir),
    output('git', ['status', '--porcelain'], vliveDir),
  ]);
  return {
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    kernel: `${release()} ${version()}`,
    node: process.version,
    gstreamer: /GStreamer (\S+)/.exec(gst ?? '')?.[1] ?? null,
    ffmpeg: /ffmpeg version (\S+)/.exec(ffmpeg ?? '')?.[1] ?? null,
    nginx: /nginx\/(\S+)/.exec(nginx ?? '')?.[1] ?? null,
    commit: head === null ? null : `${head.trim()}${dirty !== null && dirty.trim() !== '' ? '+dirty' : ''}`,
    vliveDir,
  };
}
