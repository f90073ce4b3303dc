// The public library API: re-exports only. Everything the CLI does is built from these pieces.
export * from './errors.js';
export * from './stream.js';
export type * from './types.js';
export { dependencyVersions, VERSION } from './version.js';
