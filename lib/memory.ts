// Peak resident memory of this process, for the stats in megadocs.json and the memory benchmarks.
// On Linux VmHWM is the true high-water mark; getrusage's maxRSS starts at the parent's RSS after a fork.
import { readFileSync } from 'node:fs';

export function peakRssBytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux: fall back to getrusage
  }
  return process.resourceUsage().maxRSS * 1024;
}
