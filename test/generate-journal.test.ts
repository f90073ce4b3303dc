// The journal on disk: segments per run, streaming replay across segments written in completion order,
// a torn last line ignored with a warning, a corrupt middle line and another config's journal refused.
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CompletionRequest, CompletionResult } from '../lib/backends/backend.js';
import { Journal, requestKey } from '../lib/generate/journal.js';
import { tempDir } from './helpers/cli.js';

function result(text: string): CompletionResult {
  return {
    choices: [{ text, finishReason: 'stop' }],
    usage: { promptTokens: 3, completionTokens: 1 },
    model: 'm',
  };
}

/** The order in which documents 0..count-1 finish when any document of the window [head, head + W) may. */
function completionOrder(count: number, window: number, seed: number, finished: number[] = []): number[] {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const done = new Set<number>(finished);
  const order: number[] = [];
  let head = 0;
  while (done.has(head)) head += 1;
  while (done.size < count) {
    const open: number[] = [];
    for (let ordinal = head; ordinal < Math.min(head + window, count); ordinal += 1) {
      if (!done.has(ordinal)) open.push(ordinal);
    }
    const picked = open[Math.floor(next() * open.length)]!;
    done.add(picked);
    order.push(picked);
    while (done.has(head)) head += 1;
  }
  return order;
}

describe('journal', () => {
  it('replays every outcome by document across segments written in completion order', async () => {
    const stateDir = await tempDir();
    const first = await Journal.open({ stateDir, configHash: 'abc', window: 8 });
    expect(first.resuming).toBe(false);
    const order = completionOrder(200, 8, 1);
    // Run 1 answers the first 120 completions, two requests per document, then "crashes".
    for (const ordinal of order.slice(0, 120)) {
      await first.append(ordinal, `k${ordinal}a`, { result: result(`doc ${ordinal} a`) });
      await first.append(ordinal, `k${ordinal}b`, { failure: { reason: 'http_400', message: 'too long' } });
    }
    await first.close();
    // Run 2 (window 3) answers the rest.
    const second = await Journal.open({ stateDir, configHash: 'abc', window: 3 });
    expect(second.resuming).toBe(true);
    for (let ordinal = 0; ordinal < 200; ordinal += 1) {
      const replayed = await second.replay(ordinal);
      if (order.slice(0, 120).includes(ordinal)) expect(replayed.size).toBe(2);
      else expect(replayed.size).toBe(0);
    }
    // The documents left over go through run 2's own window of 3 (replayed ones finish at once).
    for (const ordinal of completionOrder(200, 3, 2, order.slice(0, 120))) {
      await second.append(ordinal, `k${ordinal}a`, { result: result(`doc ${ordinal} a`) });
    }
    await second.close();
    expect((await readdir(stateDir)).sort()).toEqual([
      'generate.journal.00000.jsonl',
      'generate.journal.00001.jsonl',
    ]);

    const third = await Journal.open({ stateDir, configHash: 'abc', window: 8 });
    for (let ordinal = 0; ordinal < 200; ordinal += 1) {
      const replayed = await third.replay(ordinal);
      expect(replayed.get(`k${ordinal}a`)?.result?.choices[0]?.text).toBe(`doc ${ordinal} a`);
    }
    await third.close();
  });

  it('ignores a torn last line with a warning', async () => {
    const stateDir = await tempDir();
    const journal = await Journal.open({ stateDir, configHash: 'abc', window: 4 });
    await journal.append(0, 'k0', { result: result('zero') });
    await journal.append(1, 'k1', { result: result('one') });
    await journal.close();
    const path = join(stateDir, 'generate.journal.00000.jsonl');
    const lines = (await readFile(path, 'utf8')).split('\n');
    // kill -9 in the middle of writing the third line.
    await writeFile(path, `${lines.slice(0, 3).join('\n')}\n${lines[2]!.slice(0, 25)}`);
    const warnings: string[] = [];
    const resumed = await Journal.open({
      stateDir,
      configHash: 'abc',
      window: 4,
      onWarning: (w) => warnings.push(w),
    });
    expect((await resumed.replay(0)).get('k0')?.result?.choices[0]?.text).toBe('zero');
    expect((await resumed.replay(1)).get('k1')?.result?.choices[0]?.text).toBe('one');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/generate\.journal\.00000\.jsonl:4: ignored a torn last line/);
    await resumed.close();
  });

  it('refuses a corrupt line in the middle, naming file and line', async () => {
    const stateDir = await tempDir();
    const journal = await Journal.open({ stateDir, configHash: 'abc', window: 4 });
    await journal.append(0, 'k0', { result: result('zero') });
    await journal.close();
    const path = join(stateDir, 'generate.journal.00000.jsonl');
    await appendFile(path, '{"o": 1, broken\n{"o":2,"k":"k2","r":{"choices":[]}}\n');
    const resumed = await Journal.open({ stateDir, configHash: 'abc', window: 4 });
    await expect(resumed.replay(0)).rejects.toThrow(
      /generate\.journal\.00000\.jsonl:3: a line in the middle is not JSON/,
    );
    await resumed.close();
  });

  it('refuses a journal written under another config, with what to do', async () => {
    const stateDir = await tempDir();
    await (await Journal.open({ stateDir, configHash: 'a'.repeat(64), window: 4 })).close();
    await expect(Journal.open({ stateDir, configHash: 'b'.repeat(64), window: 4 })).rejects.toThrow(
      /other options \(config aaaaaaaaaaaa, this run bbbbbbbbbbbb\).*--overwrite/,
    );
  });

  it('keys a request by everything that decides its answer', () => {
    const base: CompletionRequest = {
      label: 'a',
      messages: [{ role: 'user', content: 'hi' }],
      n: 2,
      seed: 5,
      temperature: 1,
      maxTokens: 10,
    };
    const key = requestKey('m', base);
    expect(requestKey('m', { ...base, label: 'other label' })).toBe(key);
    for (const changed of [
      { ...base, seed: 6 },
      { ...base, n: 3 },
      { ...base, temperature: 0.5 },
      { ...base, maxTokens: 11 },
      { ...base, messages: [{ role: 'user' as const, content: 'hi!' }] },
      { ...base, responseFormat: 'json_object' as const },
    ]) {
      expect(requestKey('m', changed)).not.toBe(key);
    }
    expect(requestKey('other-model', base)).not.toBe(key);
  });
});
