// Asks OpenAI-compatible servers what they serve (`GET /v1/models`): the model requests name when --model is not
// given, a --model they do not serve refused before any request, and the context size vLLM reports (max_model_len).
import { MegadocsError } from '../errors.js';
import type { ServedModel } from './client.js';

/** An endpoint as discovery sees it: its base URL and its model list (undefined: it has no /models route). */
export interface ModelLister {
  readonly name: string;
  models(): Promise<ServedModel[] | undefined>;
}

/** The model requests name, and its context size in tokens when the servers report one. */
export interface ServedModelInfo {
  model: string;
  contextSize?: number;
}

const names = (models: ServedModel[]) => models.map((entry) => `"${entry.id}"`).join(', ');

/**
 * The model to request and its context: `model` (--model) checked against every list, or the one model the
 * servers list. Servers without `/models` are taken at their word; with none listing, --model is required.
 */
export async function discoverModel(
  endpoints: readonly ModelLister[],
  model: string | undefined,
): Promise<ServedModelInfo> {
  const listings = await Promise.all(
    endpoints.map(async (endpoint) => ({ endpoint, models: await endpoint.models() })),
  );
  const listed = listings.filter(
    (listing): listing is { endpoint: ModelLister; models: ServedModel[] } => listing.models !== undefined,
  );
  if (model === undefined) {
    const first = listed[0];
    if (!first) {
      throw new MegadocsError('BAD_OPTION', 'the server does not list its models (no GET /v1/models)', {
        where: endpoints.map((endpoint) => endpoint.name).join(', '),
        hint: 'Pass --model with the name the server serves',
      });
    }
    if (first.models.length !== 1) {
      throw new MegadocsError(
        'BAD_OPTION',
        first.models.length === 0
          ? 'the server lists no model at /v1/models'
          : `the server serves several models: ${names(first.models)}`,
        { where: first.endpoint.name, hint: 'Pass --model with the one to use' },
      );
    }
    model = first.models[0]!.id;
  }
  const contextSizes: number[] = [];
  for (const { endpoint, models } of listed) {
    const served = models.find((entry) => entry.id === model);
    if (!served) {
      throw new MegadocsError(
        'BAD_OPTION',
        `the server does not serve the model "${model}"; it serves ${names(models) || 'none'}`,
        { where: `${endpoint.name} (--model)`, hint: 'Pass --model with one of the names it serves' },
      );
    }
    if (served.maxModelLen !== undefined) contextSizes.push(served.maxModelLen);
  }
  return { model, ...(contextSizes.length > 0 && { contextSize: Math.min(...contextSizes) }) };
}
