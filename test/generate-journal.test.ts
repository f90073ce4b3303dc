// The journal on disk: segments per run, streaming replay across segments written in completion order (reading
// no further than needed), 0.1's segments, a torn last line ignored, a corrupt line and another config refused.
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

interface Completion {
  ordinal: number;
  /** The lowest document not finished when this one finished (what the engine journals). */
  lowest: number;
}

interface Schedule {
  /** Any of the first `open` unfinished documents finishes next... */
  open: number;
  /** ...or, with a window, any unfinished one below the lowest unfinished + `open` (0.1's engine). */
  window?: boolean;
  /** One waiting out retries, which finishes last. */
  late?: number;
  /** Done already (replayed). */
  finished?: number[];
}

/** Documents 0..count-1 finishing in a seeded random order, as `schedule` allows. */
function completions(count: number, seed: number, schedule: Schedule): Completion[] {
  const { open, late = -1, finished = [] } = schedule;
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const done = new Set<number>(finished);
  const order: Completion[] = [];
  let lowest = 0;
  while (done.size < count) {
    const candidates: number[] = [];
    const end = schedule.window ? Math.min(count, lowest + open) : count;
    for (let ordinal = lowest; ordinal < end && candidates.length < open; ordinal += 1) {
      if (!done.has(ordinal) && ordinal !== late) candidates.push(ordinal);
    }
    const picked = candidates.length > 0 ? candidates[Math.floor(next() * candidates.length)]! : late;
    while (done.has(lowest)) lowest += 1;
    order.push({ ordinal: picked, lowest });
    done.add(picked);
    while (done.has(lowest)) lowest += 1;
  }
  return order;
}

const SEGMENT = 'generate.journal.00000.jsonl';

describe('journal', () => {
  it('replays every answer by document across segments written in completion order', async () => {
    const stateDir = await tempDir();
    const first = await Journal.open({ stateDir, configHash: 'abc' });
    expect(first.resuming).toBe(false);
    // Document 3 waits out retries while 150 later ones finish: no window bounds how far answers run ahead.
    const order = completions(200, 1, { open: 8, late: 3 });
    const written = order.slice(0, 120).map((completion) => completion.ordinal);
    // Run 1 journals the first 120 completions, two answers per document, then "crashes".
    for (const { ordinal, lowest } of order.slice(0, 120)) {
      await first.append(ordinal, `k${ordinal}a`, result(`doc ${ordinal} a`), lowest);
      await first.append(ordinal, `k${ordinal}b`, result(`doc ${ordinal} b`), lowest);
    }
    first.close();
    // Run 2 replays them and answers the rest, in an order of its own.
    const second = await Journal.open({ stateDir, configHash: 'abc' });
    expect(second.resuming).toBe(true);
    for (let ordinal = 0; ordinal < 200; ordinal += 1) {
      const replayed = await second.replay(ordinal);
      expect(replayed.size).toBe(written.includes(ordinal) ? 2 : 0);
    }
    for (const { ordinal, lowest } of completions(200, 2, { open: 3, finished: written })) {
      await second.append(ordinal, `k${ordinal}a`, result(`doc ${ordinal} a`), lowest);
    }
    second.close();
    expect((await readdir(stateDir)).sort()).toEqual([SEGMENT, 'generate.journal.00001.jsonl']);

    const third = await Journal.open({ stateDir, configHash: 'abc' });
    for (let ordinal = 0; ordinal < 200; ordinal += 1) {
      const replayed = await third.replay(ordinal);
      expect(replayed.get(`k${ordinal}a`)?.result?.choices[0]?.text).toBe(`doc ${ordinal} a`);
    }
    third.close();
  });

  it('reads a segment no further than the lowest unfinished document its lines record', async () => {
    const stateDir = await tempDir();
    const journal = await Journal.open({ stateDir, configHash: 'abc' });
    await journal.append(1, 'k1', result('one'), 0);
    await journal.append(0, 'k0', result('zero'), 0);
    await journal.append(2, 'k2', result('two'), 2);
    journal.close();
    const path = join(stateDir, SEGMENT);
    await appendFile(path, '{"o": 3, broken\n{"o":3,"k":"k3","r":{"choices":[]},"l":3}\n');
    const resumed = await Journal.open({ stateDir, configHash: 'abc' });
    // Documents 0 and 1 are complete once a line says document 2 is the lowest unfinished one.
    expect((await resumed.replay(0)).get('k0')?.result?.choices[0]?.text).toBe('zero');
    expect((await resumed.replay(1)).get('k1')?.result?.choices[0]?.text).toBe('one');
    await expect(resumed.replay(2)).rejects.toThrow(
      /generate\.journal\.00000\.jsonl:5: a line in the middle/,
    );
    resumed.close();
  });

  it("replays a segment of megadocs 0.1 (its header's window bounds it) and sends its failures again", async () => {
    const stateDir = await tempDir();
    const header = { journal: 'megadocs-generate-journal', version: 1, config: 'abc', window: 4 };
    // 0.1 wrote a document's line while every document below o - 3 was done, failures as `f`.
    const lines = [header];
    for (const { ordinal } of completions(40, 3, { open: 4, window: true })) {
      lines.push({ o: ordinal, k: `k${ordinal}`, r: result(`doc ${ordinal}`) } as never);
      if (ordinal % 10 === 0) {
        lines.push({ o: ordinal, k: `f${ordinal}`, f: { reason: 'http_400', message: 'too long' } } as never);
      }
    }
    await writeFile(join(stateDir, SEGMENT), lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
    const resumed = await Journal.open({ stateDir, configHash: 'abc' });
    for (let ordinal = 0; ordinal < 40; ordinal += 1) {
      const replayed = await resumed.replay(ordinal);
      expect([...replayed.keys()]).toEqual([`k${ordinal}`]);
      expect(replayed.get(`k${ordinal}`)?.result?.choices[0]?.text).toBe(`doc ${ordinal}`);
    }
    resumed.close();
    // This run's segment is the new format, beside the old one.
    const written = (await readFile(join(stateDir, 'generate.journal.00001.jsonl'), 'utf8')).split('\n')[0]!;
    expect(JSON.parse(written)).toEqual({ journal: 'megadocs-generate-journal', version: 2, config: 'abc' });
  });

  it('ignores a torn last line with a warning', async () => {
    const stateDir = await tempDir();
    const journal = await Journal.open({ stateDir, configHash: 'abc' });
    await journal.append(0, 'k0', result('zero'), 0);
    await journal.append(1, 'k1', result('one'), 0);
    journal.close();
    const path = join(stateDir, SEGMENT);
    const lines = (await readFile(path, 'utf8')).split('\n');
    // kill -9 in the middle of writing the third line.
    await writeFile(path, `${lines.slice(0, 3).join('\n')}\n${lines[2]!.slice(0, 25)}`);
    const warnings: string[] = [];
    const resumed = await Journal.open({
      stateDir,
      configHash: 'abc',
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
    const journal = await Journal.open({ stateDir, configHash: 'abc' });
    await journal.append(0, 'k0', result('zero'), 0);
    journal.close();
    const path = join(stateDir, SEGMENT);
    await appendFile(path, '{"o": 1, broken\n{"o":2,"k":"k2","r":{"choices":[]},"l":0}\n');
    const resumed = await Journal.open({ stateDir, configHash: 'abc' });
    await expect(resumed.replay(0)).rejects.toThrow(
      /generate\.journal\.00000\.jsonl:3: a line in the middle is not JSON/,
    );
    resumed.close();
  });

  it('refuses a journal written under another config, with what to do', async () => {
    const stateDir = await tempDir();
    (await Journal.open({ stateDir, configHash: 'a'.repeat(64) })).close();
    await expect(Journal.open({ stateDir, configHash: 'b'.repeat(64) })).rejects.toThrow(
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
