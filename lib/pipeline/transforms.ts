// Users' own stages at the four insertion points of a run (documents, generations, megadocs, sequences):
// what a transform may be, its identity (part of the run identity), and `--transform FILE.mjs` modules.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MegadocsError, messageOf } from '../errors.js';
import type { Doc, DocGenerations, Megadoc, Sequence, Stage } from '../types.js';
import type { Step } from './steps.js';

/** Where a transform goes: before generation, after it, after assembly, after packing (per stream). */
export const TRANSFORM_POINTS = ['documents', 'generations', 'megadocs', 'sequences'] as const;
export type TransformPoint = (typeof TRANSFORM_POINTS)[number];

/** What flows through each point. */
export interface TransformItems {
  documents: Doc;
  generations: DocGenerations;
  megadocs: Megadoc;
  sequences: Sequence;
}

/** How a transform names itself: a changed name or version makes a rerun refuse to continue the run. */
export interface TransformIdentity {
  name: string;
  version?: string;
}

/**
 * A transform as a user gives it: a stage (identified by its function name and the hash of its source
 * text), a stage with an explicit identity, or a factory that builds the stage from the run config.
 */
export type Transform<A, C = unknown> =
  | Stage<A, A>
  | (TransformIdentity & { stage: Stage<A, A> })
  | (TransformIdentity & { create: (config: C) => Stage<A, A> | Promise<Stage<A, A>> });

/** The transforms of a run, per point, in the order they apply. */
export type Transforms<C = unknown> = {
  [P in TransformPoint]?: Transform<TransformItems[P], C> | Array<Transform<TransformItems[P], C>>;
};

/** What megadocs.json records of one transform, and what the run identity compares. */
export interface TransformRecord extends TransformIdentity {
  /** sha256 of the function's source text, for a stage given without a version. */
  source?: string;
  /** The `--transform` module it came from (its file name) and the sha256 of the file's bytes. */
  module?: string;
  sha256?: string;
}

/** Transforms ready to run: per point, each stage with its record. */
export type ResolvedTransforms = {
  [P in TransformPoint]: Array<{
    record: TransformRecord;
    stage: Stage<TransformItems[P], TransformItems[P]>;
  }>;
};

/** A `--transform` module: its exports at the insertion points, and where they came from. */
export interface TransformModule {
  file: string;
  sha256: string;
  transforms: Transforms;
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function badTransform(where: string, message: string, hint: string): MegadocsError {
  return new MegadocsError('BAD_CONFIG', message, { where, hint });
}

const SHAPE_HINT =
  'A transform is a stage ((stream) => stream), { name, version, stage }, or { name, version, create(config) => stage }';

async function resolveOne<A, C>(
  transform: unknown,
  where: string,
  config: C,
  module: TransformModule | undefined,
): Promise<{ record: TransformRecord; stage: Stage<A, A> }> {
  const fromModule = module ? { module: basename(module.file), sha256: module.sha256 } : {};
  if (typeof transform === 'function') {
    const stage = transform as Stage<A, A>;
    const name = stage.name || where;
    // A stage from a module is identified by the module's bytes; a library stage by its source text.
    return { record: { name, ...(module ? fromModule : { source: sha256(stage.toString()) }) }, stage };
  }
  if (transform === null || typeof transform !== 'object') {
    throw badTransform(where, `expected a transform, got ${typeof transform}`, SHAPE_HINT);
  }
  const given = transform as Partial<TransformIdentity> & { stage?: unknown; create?: unknown };
  if (typeof given.name !== 'string' || given.name === '') {
    throw badTransform(where, 'a transform object needs a non-empty "name"', SHAPE_HINT);
  }
  if (given.version !== undefined && typeof given.version !== 'string') {
    throw badTransform(where, `"version" must be a string, got ${typeof given.version}`, SHAPE_HINT);
  }
  let stage: unknown = given.stage;
  if (typeof given.create === 'function') {
    try {
      stage = await (given.create as (config: C) => unknown)(config);
    } catch (error) {
      throw badTransform(where, `create(config) of "${given.name}" failed: ${messageOf(error)}`, SHAPE_HINT);
    }
  }
  if (typeof stage !== 'function') {
    throw badTransform(
      where,
      `"${given.name}" has no stage function ("stage", or what "create" returns)`,
      SHAPE_HINT,
    );
  }
  const record: TransformRecord = { name: given.name, ...(given.version ? { version: given.version } : {}) };
  if (module) Object.assign(record, fromModule);
  else if (!given.version) record.source = sha256(stage.toString());
  return { record, stage: stage as Stage<A, A> };
}

/**
 * Builds every transform for a command whose insertion points are `points` (a transform at another point
 * is an error, before any work starts), library transforms first, then each module's in the order given.
 */
export async function resolveTransforms<C>(
  command: string,
  points: readonly TransformPoint[],
  config: C,
  transforms: Transforms<C> = {},
  modules: readonly TransformModule[] = [],
): Promise<ResolvedTransforms> {
  const resolved = Object.fromEntries(
    TRANSFORM_POINTS.map((point) => [point, []]),
  ) as unknown as ResolvedTransforms;
  const sources: Array<{ transforms: Transforms<C>; module?: TransformModule; label: string }> = [
    { transforms, label: 'transforms' },
    ...modules.map((module) => ({
      transforms: module.transforms as Transforms<C>,
      module,
      label: module.file,
    })),
  ];
  for (const { transforms: given, module, label } of sources) {
    for (const [point, value] of Object.entries(given)) {
      if (value === undefined) continue;
      if (!(points as readonly string[]).includes(point)) {
        throw badTransform(
          label,
          `\`megadocs ${command}\` has no "${point}" insertion point`,
          `Its points are ${points.join(', ')}${TRANSFORM_POINTS.includes(point as TransformPoint) ? '' : ` (the four of megadocs run: ${TRANSFORM_POINTS.join(', ')})`}`,
        );
      }
      const list = Array.isArray(value) ? value : [value];
      const target = resolved[point as TransformPoint] as Array<{ record: TransformRecord; stage: unknown }>;
      for (const [index, transform] of list.entries()) {
        target.push(await resolveOne(transform, `${label}: ${point}[${index}]`, config, module));
      }
    }
  }
  return resolved;
}

/** The identity of the resolved transforms: recorded in megadocs.json and compared by a rerun. */
export function transformRecords(
  resolved: ResolvedTransforms,
): Partial<Record<TransformPoint, TransformRecord[]>> {
  return Object.fromEntries(
    TRANSFORM_POINTS.filter((point) => resolved[point].length > 0).map((point) => [
      point,
      resolved[point].map((entry) => entry.record),
    ]),
  );
}

/** The steps of one point, named `POINT:NAME` in the run's list of steps. */
export function transformSteps<P extends TransformPoint>(
  resolved: ResolvedTransforms,
  point: P,
): Array<Step<TransformItems[P], TransformItems[P]>> {
  return (resolved[point] as ResolvedTransforms[P]).map(({ record, stage }) => ({
    name: `${point}:${record.name}`,
    stage: stage as Stage<TransformItems[P], TransformItems[P]>,
  }));
}

/** Loads a `--transform FILE.mjs` module: its named exports at the insertion points, and its bytes' hash. */
export async function loadTransformModule(file: string): Promise<TransformModule> {
  const path = resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw badTransform(
      file,
      `cannot read the transform module (${messageOf(error)})`,
      'Check the path given to --transform',
    );
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw badTransform(
      file,
      `cannot load the transform module (${messageOf(error)})`,
      'It must be an ES module (.mjs, or .js in a "type": "module" package)',
    );
  }
  const transforms: Transforms = {};
  for (const point of TRANSFORM_POINTS) {
    if (exports[point] !== undefined) (transforms as Record<string, unknown>)[point] = exports[point];
  }
  const known = new Set<string>([...TRANSFORM_POINTS, 'default']);
  const unknown = Object.keys(exports).filter((name) => !known.has(name));
  if (Object.keys(transforms).length === 0) {
    throw badTransform(
      file,
      `the module exports no insertion point${unknown.length ? ` (it exports ${unknown.join(', ')})` : ''}`,
      `Export one or more of ${TRANSFORM_POINTS.join(', ')}, e.g. export const generations = [stage]`,
    );
  }
  return { file, sha256: sha256(bytes), transforms };
}
