// Shared by the source tests: where the real data is, the generated fixtures, and catching a MegadocsError.
// Paths resolve from the repository, so `../shared/data` is found wherever the checkout lives.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import { writeSourceFixtures } from '../../fixtures/make-fixtures.mjs';
import { MegadocsError } from '../../lib/errors.js';

export const DATA = path.resolve(import.meta.dirname, '../../../shared/data');

/** Writes the fixtures of fixtures/make-fixtures.mjs into a fresh temp dir, removed after the file's tests. */
export function useSourceFixtures(): string {
  const dir: string = writeSourceFixtures(mkdtempSync(path.join(tmpdir(), 'megadocs-fixtures-')));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The MegadocsError `promise` rejects with (fails the test if it resolves or rejects with anything else). */
export async function failure(promise: Promise<unknown>): Promise<MegadocsError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MegadocsError);
  return error as MegadocsError;
}
