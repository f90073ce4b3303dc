// The report in a real browser: Debian's chromium (installed with apt-get when missing, as root; the test fails
// when it cannot be) opens report.html headless through playwright-core; no console error, no request but the
// file itself, every section shown, a sample's text visible, the id search working; a screenshot is kept.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, tempDir } from './helpers/cli.js';
import { type OpenAiTestServer, startOpenAiServer } from './helpers/openai-server.js';
import { realInput, type SourceDoc } from './helpers/run-output.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = join(REPO_ROOT, 'test-artifacts', 'report.png');
const LAUNCH_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Waits for another apt/dpkg (e.g. unattended upgrades) to let go of its lock instead of failing at once. */
const INSTALL = ['install', '-y', '-q', '-o', 'DPkg::Lock::Timeout=120', 'chromium'];

/** apt-get install chromium (after an apt-get update when the package lists are stale); throws saying why not. */
function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${CHROMIUM} is missing and this test is not root, so it cannot run apt-get install chromium: install Debian's chromium package first`,
    );
  }
  const apt = (args: string[]) =>
    execFileSync('apt-get', args, {
      stdio: 'pipe',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  const started = Date.now();
  try {
    try {
      apt(INSTALL);
    } catch {
      apt(['update', '-q']);
      apt(INSTALL);
    }
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
    throw new Error(
      `apt-get install chromium failed, so the report cannot be tested in a browser:\n${stderr}`,
    );
  }
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is not there`);
  process.stderr.write(`installed chromium in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}

let server: OpenAiTestServer;
let browser: Browser;
let report: string;
let docs: SourceDoc[];

beforeAll(async () => {
  ensureChromium();
  server = await startOpenAiServer();
  const dir = await tempDir('megadocs-report-browser-');
  const input = await realInput(dir, 8);
  docs = input.docs;
  const out = join(dir, 'out');
  const result = await runCli([
    'run',
    input.file,
    '--out',
    out,
    '--llm',
    server.url,
    '--model',
    'm',
    '--generations',
    '2',
    '--seq-len',
    '256',
    '--report',
    '--quiet',
  ]);
  expect(result.stderr).toBe('');
  expect(result.code, result.stderr).toBe(0);
  report = join(out, 'report.html');
  await mkdir(join(REPO_ROOT, 'test-artifacts'), { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_FLAGS });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('report.html in chromium', () => {
  it('opens from disk with no error and no request, shows every section and the samples, and searches by id', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems: string[] = [];
    const requested: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
    page.on('request', (request) => requested.push(request.url()));
    const url = pathToFileURL(report).href;
    await page.goto(url, { waitUntil: 'load' });

    for (const section of ['glance', 'drops', 'plan', 'histograms', 'samples', 'sequences']) {
      expect(await page.locator(`section#${section}`).isVisible(), section).toBe(true);
    }
    expect(await page.locator('section#histograms svg.histogram rect').count()).toBeGreaterThan(10);
    // The first sampled document's original, as the input holds it, is on screen beside its generations.
    const first = page.locator('article.sample').first();
    const firstLine = docs[0]!.text.split('\n')[0]!;
    expect(await first.locator('.column.original pre').textContent()).toContain(firstLine);
    expect(await first.locator('.column.generation').count()).toBe(2);
    expect(await page.getByText(firstLine, { exact: false }).first().isVisible()).toBe(true);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // The id search (the page's one script) hides every other document.
    const articles = await page.locator('article.sample').count();
    expect(articles).toBe(docs.length);
    await page.locator('#search').fill(docs[3]!.id);
    expect(await page.locator('article.sample:visible').count()).toBe(1);
    expect(await page.locator('article.sample:visible').getAttribute('data-id')).toBe(docs[3]!.id);
    expect(await page.locator('#shown').textContent()).toBe(`1 of ${articles} shown`);

    expect(problems).toEqual([]);
    expect(requested).toEqual([url]);
    await page.close();
  });
});
