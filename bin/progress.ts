// Progress on stderr: one live line per stage (cli-progress) while a TTY is attached and --quiet is off,
// and a closing summary. Nothing is drawn when stderr is not a TTY, so logs and pipes stay clean.
import cliProgress from 'cli-progress';
import type { ConcurrencyFigures } from '../lib/backends/endpoint-control.js';
import { describeZstdEngine, type ZstdEngineChoice } from '../lib/codecs/zstd-engines.js';
import type { SourceStats } from '../lib/sources/types.js';

export interface ProgressOptions {
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
}

/** Renders one live line from the counters it watches, given the seconds since the display started. */
export type LineRenderer = (elapsedSeconds: number) => string;

export class ProgressDisplay {
  private readonly bars?: cliProgress.MultiBar;
  private readonly stream: NodeJS.WriteStream;
  private readonly lines: Array<{ bar?: cliProgress.SingleBar; render: LineRenderer }> = [];
  private timer?: NodeJS.Timeout;
  readonly startedAt = Date.now();

  constructor(private readonly options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    if (!options.quiet && this.stream.isTTY) {
      this.bars = new cliProgress.MultiBar({
        stream: this.stream,
        format: (_options, _params, payload: { text?: string }) => payload.text ?? '',
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      });
    }
  }

  /** Shows one live line per renderer, redrawn five times a second until stop(). */
  track(...renders: LineRenderer[]): void {
    for (const render of renders) this.lines.push({ bar: this.bars?.create(1, 0, { text: '' }), render });
    this.timer ??= setInterval(() => this.redraw(), 200);
  }

  /** Draws every line now (e.g. once more with the final counts). */
  redraw(): void {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    for (const line of this.lines) line.bar?.update(0, { text: line.render(elapsed) });
  }

  /** A message between redraws (warnings): printed above the live lines, or plainly when no bar is shown. */
  log(message: string): void {
    if (this.options.quiet) return;
    this.print(message);
  }

  /** `warning: MESSAGE`, printed even with --quiet (warnings always reach stderr). */
  warn(message: string): void {
    this.print(`warning: ${message}`);
  }

  private print(line: string): void {
    if (this.bars) this.bars.log(`${line}\n`);
    else this.stream.write(`${line}\n`);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.bars?.stop();
  }

  /** The closing summary on stderr (skipped with --quiet): aligned `label  value` rows. */
  summary(title: string, rows: Array<[string, string]>): void {
    this.redraw();
    this.stop();
    if (this.options.quiet) return;
    const width = Math.max(...rows.map(([label]) => label.length));
    const body = rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join('\n');
    this.stream.write(`${title}\n${body}\n`);
  }
}

const UNITS = ['', 'k', 'M', 'G', 'T'];

/** 1234567 -> "1.23M". */
export function formatCount(value: number): string {
  let scaled = value;
  let unit = 0;
  while (Math.abs(scaled) >= 1000 && unit < UNITS.length - 1) {
    scaled /= 1000;
    unit += 1;
  }
  return unit === 0 ? String(Math.round(scaled)) : `${scaled.toFixed(scaled < 10 ? 2 : 1)}${UNITS[unit]}`;
}

/** 1536000 -> "1.5 MB". */
export function formatBytes(bytes: number): string {
  return `${formatCount(bytes)}B`.replace(/([0-9])([kMGT]?B)$/, '$1 $2');
}

/** Seconds -> "1h02m", "3m05s", "12.3s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** Items per second, guarding against a zero elapsed time. */
export function rate(count: number, elapsedSeconds: number): number {
  return elapsedSeconds > 0 ? count / elapsedSeconds : 0;
}

/** Estimated seconds left, or Infinity when the rate is unknown. */
export function eta(done: number, total: number, perSecond: number): number {
  return perSecond > 0 ? Math.max(0, total - done) / perSecond : Number.POSITIVE_INFINITY;
}

/**
 * The documents of the whole input: exact once every input byte is read, else extrapolated from the bytes read
 * so far (documents read x input bytes / bytes read); undefined while the input's size is unknown.
 */
export function estimatedDocuments(source: SourceStats, inputBytes: number | undefined): number | undefined {
  if (!inputBytes || source.bytes === 0) return undefined;
  return source.bytes >= inputBytes ? source.documents : (source.documents * inputBytes) / source.bytes;
}

/** Warns (also under --quiet) when the inputs gave no document: the command wrote an empty output. */
export function warnIfNoDocuments(display: ProgressDisplay, source: SourceStats): void {
  if (source.documents > 0) return;
  const skipped = source.skipped > 0 ? `, ${source.skipped} malformed records skipped` : '';
  display.warn(
    `the inputs hold no documents (${source.files} file(s) read${skipped}): the output is empty. ` +
      'Check the input paths, --text-field and --on-error',
  );
}

/** The summary row naming the zstd compressor (and why, when it is the slower one); none without compression. */
export function compressorRows(
  compression: string,
  engine: ZstdEngineChoice | undefined,
): Array<[string, string]> {
  return compression === 'none' ? [] : [['compressor', describeZstdEngine(engine)]];
}

/** The host:port of a server URL, for a progress line. */
function serverName(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Per server: in flight / limit (auto), the server's queue when its /metrics tell, and our tokens/s. */
export function serverParts(figures: ConcurrencyFigures | undefined): string[] {
  if (!figures || (figures.mode === 'fixed' && figures.endpoints.length < 2)) return [];
  return figures.endpoints.map((endpoint) => {
    const limit = endpoint.final === undefined ? '' : `/${endpoint.final}`;
    const queue = endpoint.queue === undefined ? '' : ` queue ${endpoint.queue}`;
    return `${serverName(endpoint.url)} ${endpoint.inFlight}${limit}${queue} ${formatCount(endpoint.tokensPerS)} tok/s`;
  });
}

/** The summary's rows on concurrency: auto's limits per server (last, highest, from what), or the fixed one. */
export function concurrencyRows(figures: ConcurrencyFigures | undefined): Array<[string, string]> {
  if (!figures) return [];
  if (figures.mode === 'fixed') return [['concurrency', `${figures.limit} (fixed)`]];
  return [
    ['concurrency', `auto (at most ${figures.max})`],
    ...figures.endpoints.map((endpoint): [string, string] => [
      `  ${serverName(endpoint.url)}`,
      `limit ${endpoint.final} at the end, ${endpoint.max} at most (from ${endpoint.signals})`,
    ]),
  ];
}
