// A small reader of the Prometheus text exposition format (what vLLM and SGLang serve at /metrics): each
// metric's sample values (one per label set, e.g. per engine); HELP/TYPE comments are skipped.

/** Sample values by metric name; undefined when the text is not Prometheus text (a line does not parse, or none is there). */
export function parsePrometheusText(text: string): Map<string, number[]> | undefined {
  const samples = new Map<string, number[]>();
  let sawSample = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseSample(line);
    if (!sample) return undefined;
    sawSample = true;
    const values = samples.get(sample.name);
    if (values) values.push(sample.value);
    else samples.set(sample.name, [sample.value]);
  }
  return sawSample ? samples : undefined;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** `name{labels} value [timestamp]`; labels are skipped (quoted values may hold braces and spaces). */
function parseSample(line: string): { name: string; value: number } | undefined {
  const name = NAME.exec(line)?.[0];
  if (!name) return undefined;
  let rest = line.slice(name.length);
  if (rest.startsWith('{')) {
    const end = labelsEnd(rest);
    if (end < 0) return undefined;
    rest = rest.slice(end + 1);
  }
  const fields = rest.trim().split(/\s+/);
  if (fields.length < 1 || fields.length > 2 || fields[0] === '') return undefined;
  const value = parseValue(fields[0]!);
  return value === undefined ? undefined : { name, value };
}

/** The index of the `}` closing a label set that starts at 0, or -1. */
function labelsEnd(text: string): number {
  let quoted = false;
  for (let index = 1; index < text.length; index += 1) {
    const char = text[index];
    if (quoted) {
      if (char === '\\') index += 1;
      else if (char === '"') quoted = false;
    } else if (char === '"') quoted = true;
    else if (char === '}') return index;
  }
  return -1;
}

function parseValue(text: string): number | undefined {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}
