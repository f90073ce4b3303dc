// `writeReport(dir)`: the self-contained report.html of a pack, generate or run output directory, written
// atomically (default DIR/report.html); what it reads is bounded by the options (see collect.ts).
import { join } from 'node:path';
import { writeFileAtomic } from '../sinks/atomic.js';
import { collectReport, type ReportOptions } from './collect.js';
import { renderReport } from './page.js';

export type { ReportOptions } from './collect.js';
export { REPORT_DEFAULTS } from './collect.js';

export const REPORT_FILE = 'report.html';

export interface WrittenReport {
  file: string;
  bytes: number;
  samples: number;
  /** Documents read from the run's files. */
  documentsRead: number;
  notes: string[];
}

export async function writeReport(
  dir: string,
  options: ReportOptions & { out?: string } = {},
): Promise<WrittenReport> {
  const data = await collectReport(dir, options);
  const html = renderReport(data);
  const file = options.out ?? join(dir, REPORT_FILE);
  await writeFileAtomic(file, html);
  return {
    file,
    bytes: Buffer.byteLength(html),
    samples: data.samples.length,
    documentsRead: data.scanned.documents,
    notes: data.notes,
  };
}
