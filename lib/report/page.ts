// The report as one HTML page: inline styles, inline SVG histograms, the sample browser rendered as escaped
// HTML and one small inline script that filters it by document id. Nothing is fetched when it opens.
import type { LatencyBuckets } from '../generate/stats.js';
import type { ReportData, SampleDoc } from './collect.js';
import { shownText } from './collect.js';
import { escapeHtml } from './escape.js';
import { binValues, latencyBins } from './histogram.js';
import { histogramSvg, shortNumber } from './svg.js';

type Json = Record<string, unknown>;

/** The value at a dotted path of a JSON object, when there is one. */
function at(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Json)[key];
  }
  return current;
}

function numberAt(value: unknown, path: string): number | undefined {
  const found = at(value, path);
  return typeof found === 'number' && Number.isFinite(found) ? found : undefined;
}

function figure(value: number | undefined, digits = 0): string {
  if (value === undefined) return '-';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function table(rows: Array<[string, string]>, className = 'facts'): string {
  const body = rows
    .map(
      ([label, value]) => `<tr><th scope="row">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`,
    )
    .join('');
  return `<table class="${className}">${body}</table>`;
}

/** The generate stage's counters: under `stats.generate` for `run`, the stats themselves for `generate`. */
function generateStats(data: ReportData): Json | undefined {
  const { command, stats } = data.manifest;
  if (command === 'run') return at(stats, 'generate') as Json | undefined;
  return command === 'generate' ? stats : undefined;
}

function sum(record: unknown): number {
  if (!record || typeof record !== 'object') return 0;
  return Object.values(record as Json).reduce<number>(
    (total, value) => total + (typeof value === 'number' ? value : 0),
    0,
  );
}

function glance(data: ReportData): string {
  const { manifest } = data;
  const stats = manifest.stats ?? {};
  const generate = generateStats(data);
  const run = manifest.command === 'run';
  const rows: Array<[string, string]> = [
    ['command', `megadocs ${manifest.command}`],
    ['status', manifest.status + (manifest.error ? ` (${manifest.error})` : '')],
    ['megadocs', manifest.megadocs],
    ['started', manifest.startedAt],
    ['finished', manifest.finishedAt ?? '-'],
    ['wall time', `${figure(numberAt(stats, 'wallSeconds') ?? numberAt(stats, 'seconds'), 1)} s`],
  ];
  const budget = at(manifest, 'budget');
  if (budget) rows.push(['budget', JSON.stringify(budget)]);
  const documentsIn =
    numberAt(stats, run ? 'source.documents' : 'documents') ?? numberAt(generate, 'documents');
  const documentsOut = run ? numberAt(stats, 'assemble.documentsOut') : numberAt(stats, 'documents');
  rows.push(['documents in / out', `${figure(documentsIn)} / ${figure(documentsOut)}`]);
  if (generate) {
    rows.push(
      [
        'model',
        `${String(generate.model ?? '-')}${generate.contextSize ? ` (context ${generate.contextSize})` : ''}`,
      ],
      ['generations', figure(numberAt(generate, 'generations'))],
      [
        'requests',
        `${figure(numberAt(generate, 'requests.completed'))} answered, ${figure(numberAt(generate, 'requests.replayed'))} replayed, ${figure(numberAt(generate, 'requests.failed'))} failed (${figure(numberAt(generate, 'requests.sent'))} attempts, ${figure(sum(generate.retries))} retries)`,
      ],
      [
        'LLM tokens in / out',
        `${figure(sum(Object.values((generate.tokens ?? {}) as Json).map((usage) => numberAt(usage, 'prompt') ?? 0)))} / ${figure(sum(Object.values((generate.tokens ?? {}) as Json).map((usage) => numberAt(usage, 'completion') ?? 0)))}`,
      ],
      [
        'latency p50 / p99',
        `${figure(numberAt(generate, 'latencyMs.p50'), 1)} ms / ${figure(numberAt(generate, 'latencyMs.p99'), 1)} ms`,
      ],
    );
  }
  if (run) {
    rows.push(
      [
        'tokens real / synthetic',
        `${figure(numberAt(stats, 'tokens.real'))} / ${figure(numberAt(stats, 'tokens.synthetic'))}`,
      ],
      ['expansion', `${figure(numberAt(stats, 'tokens.expansionFactor'), 2)}x`],
      [
        'sequences',
        `${figure(numberAt(stats, 'output.sequences'))} (real ${figure(numberAt(stats, 'mix.sequences.real'))}, synthetic ${figure(numberAt(stats, 'mix.sequences.synthetic'))}; synthetic weight ${figure(numberAt(stats, 'mix.syntheticWeight'), 3)})`,
      ],
      [
        'shards',
        `${figure(numberAt(stats, 'output.shards'))} (${figure(numberAt(stats, 'output.storedBytes'))} bytes stored)`,
      ],
    );
  } else if (manifest.command === 'pack') {
    rows.push(
      ['tokens', figure(numberAt(stats, 'tokens'))],
      ['sequences', figure(numberAt(stats, 'sequences'))],
      [
        'shards',
        `${figure(numberAt(stats, 'shards'))} (${figure(numberAt(stats, 'storedBytes'))} bytes stored)`,
      ],
    );
  } else {
    rows.push([
      'shards',
      `${figure(numberAt(stats, 'shards'))} (${figure(numberAt(stats, 'storedBytes'))} bytes stored)`,
    ]);
  }
  const planned = at(manifest, 'plan.planned');
  if (planned) {
    rows.push(
      ['planned cost', costText(at(planned, 'cost'))],
      ['actual cost', costText(at(manifest, 'plan.actual.cost'))],
    );
  }
  const versions = Object.entries(manifest.versions ?? {})
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  rows.push(['versions', versions]);
  return `<section id="glance"><h2>The run at a glance</h2>${table(rows)}<details><summary>options</summary><pre>${escapeHtml(JSON.stringify(manifest.options, null, 2))}</pre></details></section>`;
}

function costText(cost: unknown): string {
  const total = numberAt(cost, 'total');
  if (total === undefined) return 'not known (plan with --price-per-mtok)';
  return `${figure(total, 4)} ${String(at(cost, 'currency') ?? '')}`.trim();
}

function drops(data: ReportData): string {
  const stats = data.manifest.stats ?? {};
  const generate = generateStats(data) ?? {};
  const rows: string[] = [];
  const add = (stage: string, counts: unknown, examples?: unknown) => {
    for (const [cause, count] of Object.entries((counts ?? {}) as Json)) {
      if (typeof count !== 'number' || count === 0) continue;
      const example = at(examples, cause);
      rows.push(
        `<tr><td>${escapeHtml(stage)}</td><td>${escapeHtml(cause)}</td><td>${figure(count)}</td><td>${escapeHtml(typeof example === 'string' ? example : '-')}</td></tr>`,
      );
    }
  };
  add('failed requests', generate.failures, generate.failureExamples);
  add('retries', generate.retries);
  add('documents skipped', generate.skipped);
  add('generations filtered', generate.filtered);
  add('truncated (finish_reason length)', { length: generate.truncated }, data.examples);
  add('long documents', generate.longDocs);
  add('assemble dropped', at(stats, 'assemble.dropped'), data.examples);
  add('malformed input records', {
    skipped:
      numberAt(stats, 'source.malformedRecords') ??
      numberAt(stats, 'malformedRecords') ??
      numberAt(stats, 'skippedRecords'),
  });
  const body = rows.length
    ? `<table class="causes"><tr><th>where</th><th>cause</th><th>count</th><th>example</th></tr>${rows.join('')}</table>`
    : '<p>No failures, retries or drops were recorded.</p>';
  return `<section id="drops"><h2>Failures and drops</h2>${body}</section>`;
}

function plan(data: ReportData): string {
  const planned = at(data.manifest, 'plan.planned') as Json | undefined;
  if (!planned) {
    return '<section id="plan"><h2>Planned vs actual</h2><p>No plan was recorded for this run (megadocs.json has no <code>plan</code>).</p></section>';
  }
  const actual = (at(data.manifest, 'plan.actual') ?? {}) as Json;
  const flat = (value: unknown, prefix = ''): Array<[string, number]> =>
    Object.entries((value ?? {}) as Json).flatMap(([key, item]) => {
      if (prefix === '' && key === 'assumptions') return [];
      if (typeof item === 'number') return [[`${prefix}${key}`, item] as [string, number]];
      return item && typeof item === 'object' && !Array.isArray(item) ? flat(item, `${prefix}${key}.`) : [];
    });
  const actualByKey = new Map(flat(actual));
  const rows = flat(planned)
    .map(([key, value]) => {
      const real = actualByKey.get(key);
      const ratio = real !== undefined && value !== 0 ? `${(real / value).toFixed(2)}x` : '-';
      return `<tr><td>${escapeHtml(key)}</td><td>${figure(value, 3)}</td><td>${figure(real, 3)}</td><td>${ratio}</td></tr>`;
    })
    .join('');
  const assumptions = planned.assumptions
    ? `<p>Assumptions: <code>${escapeHtml(JSON.stringify(planned.assumptions))}</code></p>`
    : '';
  return `<section id="plan"><h2>Planned vs actual</h2><table class="causes"><tr><th>figure</th><th>planned</th><th>actual</th><th>actual / planned</th></tr>${rows}</table>${assumptions}</section>`;
}

function histograms(data: ReportData): string {
  const { values, scanned, settings } = data;
  const generate = generateStats(data);
  const latency = at(generate, 'latencyHistogram') as LatencyBuckets | undefined;
  const unit = data.tokenizer ? `tokens (${data.tokenizer})` : 'tokens';
  const figures: Array<[string, string]> = [
    ['Source document tokens', histogramSvg('source document tokens', binValues(values.sourceTokens), unit)],
  ];
  if (data.manifest.command !== 'pack') {
    figures.push(
      ['Generation tokens', histogramSvg('generation tokens', binValues(values.generationTokens), unit)],
      [
        'Generation / source length',
        histogramSvg('generation/source ratio', binValues(values.ratio), 'ratio'),
      ],
    );
  }
  if (data.manifest.command !== 'generate') {
    figures.push(['Megadoc tokens', histogramSvg('megadoc tokens', binValues(values.megadocTokens), unit)]);
    if (values.sequencesPerMegadoc.length > 0) {
      figures.push([
        'Sequences per megadoc',
        histogramSvg(
          'sequences per megadoc',
          binValues(values.sequencesPerMegadoc),
          'sequences (tokens / seq-len)',
        ),
      ]);
    }
  }
  if (generate) {
    figures.push([
      'Request latency',
      latency
        ? histogramSvg('request latency', latencyBins(latency), 'ms')
        : '<p>This run recorded no latency histogram (written by megadocs 0.1 before it was kept).</p>',
    ]);
  }
  const cells = figures.map(
    ([title, svg]) => `<figure><figcaption>${escapeHtml(title)}</figcaption>${svg}</figure>`,
  );
  const reasons = Object.entries(data.finishReasons)
    .map(([reason, count]) => `<tr><td>${escapeHtml(reason)}</td><td>${figure(count)}</td></tr>`)
    .join('');
  const finish = generate
    ? `<h3>Finish reasons</h3><table class="causes"><tr><th>finish_reason</th><th>generations read</th></tr>${reasons}</table><p>Truncated over the whole run (finish_reason length): ${figure(numberAt(generate, 'truncated'))}.</p>`
    : '';
  const scope = `Over the first ${figure(scanned.documents)} documents of the run${scanned.whole ? ' (all of them)' : ` (the report reads at most --scan ${settings.scan})`}; latency over every request of the run.`;
  return `<section id="histograms"><h2>Distributions</h2><p class="scope">${escapeHtml(scope)}</p><div class="figures">${cells.join('')}</div>${finish}</section>`;
}

/** The original with each stretch rationale inserted at its split, marked. */
function stretched(doc: SampleDoc): string | undefined {
  const placed = doc.generations.filter((generation) => generation.splitOffset !== undefined);
  if (doc.source === undefined || placed.length === 0) return undefined;
  const ordered = [...placed].sort((a, b) => a.splitOffset! - b.splitOffset!);
  let previous = 0;
  let html = '';
  for (const generation of ordered) {
    html += escapeHtml(doc.source.slice(previous, generation.splitOffset));
    html += `<mark title="${escapeHtml(generation.label)}">${escapeHtml(shownText(generation.text))}</mark>`;
    previous = generation.splitOffset!;
  }
  return html + escapeHtml(doc.source.slice(previous));
}

function sampleArticle(doc: SampleDoc): string {
  const tokens = (count?: number) => (count === undefined ? '' : `, ${figure(count)} tokens`);
  const original =
    doc.source === undefined
      ? '<div class="text missing">original not available (see the notes)</div>'
      : `<pre class="text">${escapeHtml(shownText(doc.source))}</pre>`;
  const columns = [
    `<div class="column original"><h4>original${tokens(doc.sourceTokens)}</h4>${original}</div>`,
  ];
  for (const generation of doc.generations) {
    columns.push(
      `<div class="column generation"><h4>${escapeHtml(generation.label)} · ${escapeHtml(generation.finishReason)}${tokens(generation.tokens)}</h4><pre class="text">${escapeHtml(shownText(generation.text))}</pre></div>`,
    );
  }
  const marked = stretched(doc);
  const stretch = marked
    ? `<details class="stretch"><summary>original with the rationales marked</summary><pre class="text">${marked}</pre></details>`
    : '';
  return `<article class="sample" data-id="${escapeHtml(doc.id)}"><h3>${escapeHtml(doc.id)} <span class="meta">document ${doc.ordinal + 1}, ${doc.generations.length} generations</span></h3>${stretch}<div class="columns">${columns.join('')}</div></article>`;
}

function samples(data: ReportData): string {
  const { settings } = data;
  const intro = `${data.samples.length} documents drawn with seed ${settings.seed} from the ${figure(data.scanned.documents)} read.`;
  const search =
    '<label>Find a document by id: <input id="search" type="search" placeholder="document id" autocomplete="off"></label> <span id="shown"></span>';
  return `<section id="samples"><h2>Samples</h2><p>${escapeHtml(intro)}</p>${search}${data.samples.map(sampleArticle).join('')}</section>`;
}

function sequences(data: ReportData): string {
  if (data.sequences.length === 0) return '';
  const items = data.sequences
    .map(
      (sequence) =>
        `<details><summary>${escapeHtml(sequence.label)} (${sequence.parts.length} parts)</summary>${sequence.parts.map((part) => `<pre class="text part">${escapeHtml(part)}</pre>`).join('')}</details>`,
    )
    .join('');
  return `<section id="sequences"><h2>Output sequences, decoded</h2><p>What a trainer reads: sequences drawn by seed from the dataset, cut at each EOS.</p>${items}</section>`;
}

function notes(data: ReportData): string {
  if (data.notes.length === 0) return '';
  return `<section id="notes"><h2>Notes</h2><ul>${data.notes.map((note) => `<li>${escapeHtml(note)}</li>`).join('')}</ul></section>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:16px 24px;color:#1d2430;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:1px solid #d8dee6;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:8px 0}h4{font-size:12px;margin:0 0 4px;color:#4a5566;font-weight:600}
table{border-collapse:collapse;margin:6px 0}th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #e6eaef;vertical-align:top}
table.facts th{color:#4a5566;font-weight:500;white-space:nowrap}
.figures{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;background:#fff;border:1px solid #e0e5eb;border-radius:6px;padding:8px}
figcaption{font-weight:600;font-size:13px;margin-bottom:4px}svg.histogram rect{fill:#3b73b9}svg.histogram text{font-size:10px;fill:#4a5566}
svg.histogram .axis{stroke:#8894a4}.scope{color:#4a5566}
article.sample{background:#fff;border:1px solid #e0e5eb;border-radius:6px;padding:8px 12px;margin:12px 0}
article.sample[hidden]{display:none}.meta{font-weight:400;color:#6a7484;font-size:12px}
.columns{display:grid;grid-auto-flow:column;grid-auto-columns:minmax(300px,1fr);gap:10px;overflow-x:auto}
.column.original{background:#f3f7f1}.column{border:1px solid #e6eaef;border-radius:4px;padding:6px}
pre.text{white-space:pre-wrap;word-break:break-word;max-height:340px;overflow:auto;margin:0;font:12px/1.4 ui-monospace,monospace}
mark{background:#fde9a8}.missing{color:#8a5a00}input#search{padding:4px 8px;width:260px}
pre.part{border-top:1px dashed #c9d1db;padding-top:4px}`;

/** Filters the sample browser by id: hides the articles whose data-id does not contain the query. */
const SCRIPT = `
(function(){var input=document.getElementById('search');var shown=document.getElementById('shown');
var articles=Array.prototype.slice.call(document.querySelectorAll('article.sample'));
function filter(){var query=input.value.trim().toLowerCase();var count=0;
articles.forEach(function(article){var match=article.getAttribute('data-id').toLowerCase().indexOf(query)>=0;article.hidden=!match;if(match)count++;});
shown.textContent=count+' of '+articles.length+' shown';}
input.addEventListener('input',filter);filter();})();`;

/** The whole page. */
export function renderReport(data: ReportData): string {
  const title = `megadocs report: ${data.manifest.command} ${data.dir}`;
  const generated = `Written ${new Date().toISOString()} by megadocs ${data.manifest.megadocs}; ${shortNumber(data.scanned.generations)} generations read.`;
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
    `<meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(title)}</h1><p class="scope">${escapeHtml(generated)}</p>`,
    glance(data),
    drops(data),
    plan(data),
    histograms(data),
    samples(data),
    sequences(data),
    notes(data),
    `<script>${SCRIPT}</script></body></html>\n`,
  ].join('');
}
