// The two zstd compressors the compression worker can run, one streaming frame at a time: native libzstd
// through zstd-napi (an optional dependency, built from source at install: ~4x zstd-codec's speed and a newer
// zstd) and zstd-codec (Emscripten, always there). The caller picks one; both write the same format.
import { createRequire } from 'node:module';
import { MegadocsError } from '../errors.js';

/** `native`: libzstd when zstd-napi loads, else zstd-codec (the default); `zstd-codec`: always the wasm one. */
export type ZstdEngineChoice = 'native' | 'zstd-codec';
export const ZSTD_ENGINES: readonly ZstdEngineChoice[] = ['native', 'zstd-codec'];
export const DEFAULT_ZSTD_ENGINE: ZstdEngineChoice = 'native';

/** `value` as an engine choice; a BAD_OPTION error naming `where` and the choices otherwise. */
export function checkZstdEngine(value: string, where: string): ZstdEngineChoice {
  if ((ZSTD_ENGINES as readonly string[]).includes(value)) return value as ZstdEngineChoice;
  throw new MegadocsError('BAD_OPTION', `unknown zstd engine ${JSON.stringify(value)}`, {
    where,
    hint: `Use ${ZSTD_ENGINES.join(' or ')} (default ${DEFAULT_ZSTD_ENGINE}: libzstd when zstd-napi is installed)`,
  });
}

/** One frame being compressed: pieces in, compressed bytes out through `collect` (each in its own buffer). */
export interface FrameEngine {
  transform(piece: Uint8Array, collect: (output: Uint8Array) => void): void;
  end(collect: (output: Uint8Array) => void): void;
  /** Frees the frame's native state (after end, or to abandon the frame). */
  delete(): void;
}

export interface ZstdEngine {
  /** What compressed: `zstd-napi (libzstd 1.5.7)` or `zstd-codec`, for megadocs.json. */
  name: string;
  begin(level: number): FrameEngine;
}

const require = createRequire(import.meta.url);

interface NativeBinding {
  CCtx: new () => {
    setParameter(parameter: number, value: number): void;
    compressStream2(dst: Uint8Array, src: Uint8Array, end: number): [number, number, number];
  };
  CParameter: { compressionLevel: number };
  EndDirective: { continue: number; end: number };
  cStreamOutSize(): number;
  versionString(): string;
}

/** zstd-napi's native binding, or why it does not load (not installed, or installed without its build). */
function loadNativeBinding(): { binding: NativeBinding } | { missing: string } {
  try {
    return { binding: require('zstd-napi/binding') as NativeBinding };
  } catch {
    try {
      require.resolve('zstd-napi/package.json');
      return { missing: 'zstd-napi is installed but its native build is missing' };
    } catch {
      return { missing: 'zstd-napi is not installed' };
    }
  }
}

/** libzstd's streaming compressor; undefined when zstd-napi is not installed or its build is missing. */
function nativeEngine(): ZstdEngine | undefined {
  const loaded = loadNativeBinding();
  if (!('binding' in loaded)) return undefined;
  const { binding } = loaded;
  const output = new Uint8Array(binding.cStreamOutSize());
  const empty = new Uint8Array(0);
  return {
    name: `zstd-napi (libzstd ${binding.versionString()})`,
    begin(level) {
      const context = new binding.CCtx();
      context.setParameter(binding.CParameter.compressionLevel, level);
      const step = (input: Uint8Array, directive: number, collect: (output: Uint8Array) => void) => {
        const [remaining, produced, consumed] = context.compressStream2(output, input, directive);
        if (produced > 0) collect(output.slice(0, produced));
        return { remaining, consumed };
      };
      return {
        transform(piece, collect) {
          for (let from = 0; from < piece.length; ) {
            from += step(piece.subarray(from), binding.EndDirective.continue, collect).consumed;
          }
        },
        end(collect) {
          while (step(empty, binding.EndDirective.end, collect).remaining !== 0);
        },
        delete() {},
      };
    },
  };
}

interface CodecStream {
  begin(level: number): boolean;
  transform(piece: Uint8Array, onOutput: (output: Uint8Array) => void): boolean;
  end(onOutput: (output: Uint8Array) => void): boolean;
  delete(): void;
}

/** zstd-codec's streaming compressor (its wasm heap is fixed at 16 MiB: levels up to 9). */
async function codecEngine(): Promise<ZstdEngine> {
  const { run } = require('zstd-codec/lib/module.js') as {
    run(onReady: (binding: { ZstdCompressStreamBinding: new () => CodecStream }) => void): void;
  };
  // The Emscripten module has a `then` of its own: resolving a promise with it directly never settles.
  const { binding } = await new Promise<{ binding: { ZstdCompressStreamBinding: new () => CodecStream } }>(
    (resolve) => run((module) => resolve({ binding: module })),
  );
  // zstd-codec hands outputs in views of its heap: each is copied into a buffer of its own.
  const own = (collect: (output: Uint8Array) => void) => (output: Uint8Array) => {
    if (output.length > 0) collect(output.byteLength === output.buffer.byteLength ? output : output.slice());
  };
  return {
    name: 'zstd-codec',
    begin(level) {
      const stream = new binding.ZstdCompressStreamBinding();
      if (!stream.begin(level)) {
        stream.delete();
        throw new Error(`zstd-codec could not start a frame at level ${level}`);
      }
      return {
        transform(piece, collect) {
          if (!stream.transform(piece, own(collect)))
            throw new Error('zstd-codec failed on a piece of input');
        },
        end(collect) {
          if (!stream.end(own(collect))) throw new Error('zstd-codec failed to end the frame');
        },
        delete: () => stream.delete(),
      };
    },
  };
}

/** The native engine when `choice` allows it and it loads. */
function nativeEngineWanted(choice: ZstdEngineChoice): ZstdEngine | undefined {
  return choice === 'zstd-codec' ? undefined : nativeEngine();
}

/** The engine `choice` asks for: native when it loads (unless zstd-codec is asked for), else zstd-codec. */
export async function loadZstdEngine(choice: ZstdEngineChoice = DEFAULT_ZSTD_ENGINE): Promise<ZstdEngine> {
  return nativeEngineWanted(choice) ?? (await codecEngine());
}

/** The name of the engine loadZstdEngine(choice) picks, without loading zstd-codec's wasm. */
export function zstdEngineName(choice: ZstdEngineChoice = DEFAULT_ZSTD_ENGINE): string {
  return nativeEngineWanted(choice)?.name ?? 'zstd-codec';
}

/**
 * The engine loadZstdEngine(choice) picks, for a summary: its name and, when libzstd was wanted but zstd-napi
 * did not load (it is built at `npm install`, which drops it silently without a C++ compiler), why and what it costs.
 */
export function describeZstdEngine(choice: ZstdEngineChoice = DEFAULT_ZSTD_ENGINE): string {
  if (choice === 'zstd-codec') return 'zstd-codec (asked for)';
  const loaded = loadNativeBinding();
  if ('binding' in loaded) return zstdEngineName(choice);
  return (
    `zstd-codec (wasm, ~4x slower than libzstd: ${loaded.missing}; it is compiled at npm install, ` +
    'which needs a C++ compiler: install one, e.g. g++ and make, then run npm install again)'
  );
}
