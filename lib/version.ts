// The package's own version and the versions of the libraries that shape its output (for megadocs.json).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type ZstdEngineChoice, zstdEngineName } from './codecs/zstd-engines.js';

const require = createRequire(import.meta.url);

/** Our package.json: one level up from lib/ in the sources, two from dist/lib/ when built. */
function ownPackageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (pkg.name === 'megadocs') return pkg.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

/** The installed version of package `name`, or 'unknown'. */
export function dependencyVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export const VERSION: string = ownPackageVersion();

/** Versions recorded in megadocs.json so a run can be reproduced (with the zstd engine the run compresses with). */
export function dependencyVersions(zstdEngine?: ZstdEngineChoice): Record<string, string> {
  const names = [
    'gpt-tokenizer',
    'highland',
    'undici',
    'zstd-codec',
    'zstd-napi',
    'fzstd',
    'hyparquet',
    '@huggingface/hub',
  ];
  return Object.fromEntries([
    ['node', process.version],
    ...names.map((name) => [name, dependencyVersion(name)]),
    ['zstd compressor', zstdEngineName(zstdEngine)],
  ]);
}
