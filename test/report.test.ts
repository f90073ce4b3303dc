// `megadocs report` and `--report` without a browser: the page's sections, escaping of hostile web text, ids and
// server messages, a seeded sample, the three commands' outputs, the recorded latency histogram, and the bound.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli, SHARED_DATA, tempDir } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { realInput } from './helpers/run-output.js';

const HOSTILE_ID = '<img src=x onerror=alert(1)>';
const HOSTILE_TEXT =
  'Hostile page <script>alert("owned")</script> </pre></article><b>bold</b> & an "attribute" \'quote\' end.\nSecond line of the hostile page.';

let server: OpenAiTestServer;
let dir: string;
let input: string;

beforeAll(async () => {
  server = await startOpenAiServer();
  dir = await tempDir('megadocs-report-');
  const { file } = await realInput(dir, 11);
  await writeFile(
    file,
    `${await readFile(file, 'utf8')}${JSON.stringify({ id: HOSTILE_ID, text: HOSTILE_TEXT })}\n`,
  );
  input = file;
});

afterAll(async () => {
  await server.close();
});

const SECTIONS = ['glance', 'drops', 'plan', 'histograms', 'samples'];

/** Runs the CLI and expects exit code 0 (its stderr as the message otherwise). */
async function succeeds(args: string[]): Promise<CliResult> {
  const result = await runCli(args);
  expect(result.code, result.stderr).toBe(0);
  return result;
}

function articles(html: string): string[] {
  return [...html.matchAll(/<article class="sample" data-id="([^"]*)"/g)].map((match) => match[1]!);
}

/** What a page must hold whatever the run: every section, no external resource, one inline script. */
function expectSelfContained(html: string): void {
  for (const section of SECTIONS) expect(html).toContain(`<section id="${section}">`);
  expect(html.match(/<script\b/g)).toHaveLength(1);
  // No tag loads anything: no src or href attribute (attribute values, which hold escaped text, left out).
  expect(html.replace(/"[^"]*"/g, '""')).not.toMatch(/<[a-z][^>]*\s(?:src|href)\s*=/i);
  expect(html).not.toMatch(/url\(/i);
}

describe('megadocs report', () => {
  it('run --report writes a self-contained page with every section, hostile text escaped', async () => {
    const out = join(dir, 'run');
    server.addFaults([
      { kind: 'status', status: 400, message: 'prompt too long for <b>model</b>' },
      { kind: 'length' },
    ]);
    const llm = ['--llm', server.url, '--model', 'm', '--max-failures', '0.5', '--max-retries', '0'];
    const result = await succeeds([
      'run',
      input,
      '--out',
      out,
      ...llm,
      '--generations',
      '2',
      '--seq-len',
      '256',
      '--report',
    ]);
    expect(result.stderr).toContain('report');
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expectSelfContained(html);
    expect(html).toContain('<section id="sequences">');
    expect(html.match(/<svg class="histogram"/g)!.length).toBe(6);
    // The web text, its id and the server's message are shown as text, never as markup.
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>bold</b>');
    expect(html).toContain(
      'Hostile page &lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &lt;/pre&gt;&lt;/article&gt;',
    );
    expect(html).toContain('data-id="&lt;img src=x onerror=alert(1)&gt;"');
    expect(html).toContain('prompt too long for &lt;b&gt;model&lt;/b&gt;');
    expect(html).toContain('<td>length</td>');
    // An example beside each cause: the server's message, a truncated generation, the document left without answers.
    expect(html).toMatch(/<td>length<\/td><td>2<\/td><td>document \d+: \.\.\.\S/);
    expect(html).toMatch(
      /<td>failed_requests<\/td><td>1<\/td><td>fineweb-\d+ \(document \d+\) has no answer<\/td>/,
    );
    // Twelve documents, one of which lost its only request to the 400: the other 11 are shown (the default
    // sample is 20), in input order, each with its original.
    expect(articles(html)).toHaveLength(11);
    expect(articles(html).at(-1)).toBe('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('original not available');

    // The run records its latency histogram: one count per answered request.
    const manifest = JSON.parse(await readFile(join(out, 'megadocs.json'), 'utf8'));
    const generate = manifest.stats.generate;
    const counts = generate.latencyHistogram.counts as number[];
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(generate.requests.completed);
    expect(generate.latencyHistogram.growth).toBeCloseTo(1.05);
  });

  it('draws the same seeded sample again, another with another seed, on a generate output', async () => {
    const out = join(dir, 'generate');
    const llm = ['--llm', server.url, '--model', 'm'];
    await succeeds(['generate', input, '--out', out, ...llm, '--generations', '3', '--quiet']);
    const report = (seed: number, file: string) =>
      succeeds(['report', out, '--samples', '4', '--seed', String(seed), '--out', join(dir, file), '--json']);
    const first = await report(1, 'first.html');
    const summary = JSON.parse(first.stdout.toString());
    expect(summary).toMatchObject({ samples: 4, documentsRead: 12, notes: [] });
    await report(1, 'again.html');
    await report(7, 'other.html');
    const ids = async (file: string) => articles(await readFile(join(dir, file), 'utf8'));
    expect(await ids('again.html')).toEqual(await ids('first.html'));
    expect(await ids('other.html')).not.toEqual(await ids('first.html'));
    const html = await readFile(join(dir, 'first.html'), 'utf8');
    expectSelfContained(html);
    // Each sampled document beside its three generations, as the generate shards hold them.
    expect(html.match(/class="column generation"/g)).toHaveLength(12);
    expect(html).toContain('rephrase/wiki #2');
  });

  it('reports a pack output, and refuses a directory that is no run', async () => {
    const out = join(dir, 'pack');
    await succeeds(['pack', input, '--out', out, '--seq-len', '128', '--report', '--quiet']);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expectSelfContained(html);
    expect(articles(html)).toHaveLength(12);
    expect(html).toContain('Second line of the hostile page.');

    const refused = await runCli(['report', join(dir, 'nowhere')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(join(dir, 'nowhere', 'megadocs.json'));
    expect(refused.stderr).toContain('--out directory of a pack, generate or run');
  });

  it('shows the planned figures against the actual ones when megadocs.json holds a plan', async () => {
    const out = join(dir, 'pack');
    const file = join(out, 'megadocs.json');
    const manifest = JSON.parse(await readFile(file, 'utf8'));
    // The shape `megadocs plan` records (planned at the start, actual at the end).
    manifest.plan = {
      planned: {
        documents: 12,
        outputTokens: 3100,
        dataset: { tokens: 5000 },
        cost: { total: 0.03, currency: 'USD' },
        assumptions: { outputRatio: 0.57 },
      },
      actual: {
        documents: 12,
        outputTokens: 1550,
        dataset: { tokens: 4000 },
        cost: { total: 0.015, currency: 'USD' },
      },
    };
    await writeFile(file, JSON.stringify(manifest));
    await succeeds(['report', out, '--quiet']);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<td>outputTokens</td><td>3,100</td><td>1,550</td><td>0.50x</td>');
    expect(html).toContain('<td>dataset.tokens</td><td>5,000</td><td>4,000</td><td>0.80x</td>');
    expect(html).toContain('{&quot;outputRatio&quot;:0.57}');
    expect(html).toContain('<th scope="row">planned cost</th><td>0.03 USD</td>');
  });

  it('reads a bounded scan of a bigger run: its size stays under the stated bound', async () => {
    const out = join(dir, 'big');
    const corpus = join(SHARED_DATA, 'wikipedia-2349.jsonl');
    await succeeds(['pack', corpus, '--out', out, '--seq-len', '512', '--quiet']);
    const report = (scan: number, file: string) =>
      succeeds([
        'report',
        out,
        '--samples',
        '10',
        '--scan',
        String(scan),
        '--json',
        '--out',
        join(dir, file),
      ]);
    const written = [await report(300, 'small.html'), await report(1000, 'larger.html')].map((result) =>
      JSON.parse(result.stdout.toString()),
    );
    expect(written.map((summary) => summary.documentsRead)).toEqual([300, 1000]);
    // 10 samples of at most 20,000 characters (escaping at most doubles them here) plus a fixed frame.
    for (const summary of written) expect(summary.bytes).toBeLessThan(10 * 2 * 20_000 + 100_000);
    const html = await readFile(join(dir, 'small.html'), 'utf8');
    expect(html).toContain('the report reads at most --scan 300');
  });
});
