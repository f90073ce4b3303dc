// Turns Hub refusals (401, 403, gated, 404, other statuses) into MegadocsErrors that say what to do.
// Used for our own requests (a Response) and for errors thrown by @huggingface/hub (HubApiError).
import { HubApiError } from '@huggingface/hub';
import { MegadocsError, messageOf } from '../errors.js';
import type { HubResponse } from './client.js';

export interface HubErrorContext {
  /** The `hf://` URL (of a file or a location) the request was about. */
  where: string;
  /** Hub base URL, used to point at the dataset page. */
  endpoint: string;
  repo: string;
  hasToken: boolean;
}

/** The error for a refused Hub request, from its status, the Hub's `X-Error-Code` and its message. */
export function hubStatusError(
  status: number,
  errorCode: string | null,
  serverMessage: string,
  context: HubErrorContext,
): MegadocsError {
  const page = `${context.endpoint}/datasets/${context.repo}`;
  const said = serverMessage ? ` (the Hub said: ${serverMessage.trim().slice(0, 300)})` : '';
  if (errorCode === 'GatedRepo' || status === 403) {
    return new MegadocsError('HUB', `access to the dataset ${context.repo} is restricted${said}`, {
      where: context.where,
      hint: context.hasToken
        ? `Accept the dataset's terms at ${page} with the account whose token is in HF_TOKEN, or set HF_TOKEN to a token with read access to it`
        : `Set HF_TOKEN to a read token (https://huggingface.co/settings/tokens) of an account that accepted the dataset's terms at ${page}`,
    });
  }
  if (status === 401) {
    return new MegadocsError(
      'HUB',
      `the Hub refused the request (401 Unauthorized): the dataset ${context.repo} is private, gated, missing, or the token is invalid${said}`,
      {
        where: context.where,
        hint: context.hasToken
          ? `Check that HF_TOKEN is valid and can read ${context.repo}; if the dataset is gated, accept its terms at ${page}`
          : `Set HF_TOKEN to a read token (https://huggingface.co/settings/tokens); if the dataset is gated, accept its terms at ${page}`,
      },
    );
  }
  if (status === 404 && errorCode === 'RepoNotFound') {
    return new MegadocsError('HUB', `the dataset ${context.repo} does not exist${said}`, {
      where: context.where,
      hint: `Check the name at ${context.endpoint}/datasets?search=${encodeURIComponent(context.repo)}; a private dataset needs HF_TOKEN`,
    });
  }
  return new MegadocsError('HUB', `the Hub answered ${status}${said}`, {
    where: context.where,
    hint:
      status >= 500 || status === 429
        ? 'The Hub is unavailable or rate-limiting even after retries; run the command again later'
        : 'Check the URL, the revision and HF_ENDPOINT',
  });
}

/** The error for a response that is not ok (reads its body for the Hub's message). */
export async function hubResponseError(
  response: HubResponse,
  context: HubErrorContext,
): Promise<MegadocsError> {
  const text = await response.body.text().catch(() => '');
  let message = text;
  try {
    const json = JSON.parse(text) as { error?: string; message?: string };
    message = json.error ?? json.message ?? text;
  } catch {
    // not JSON: keep the text
  }
  const code = response.headers['x-error-code'];
  return hubStatusError(response.status, typeof code === 'string' ? code : null, message, context);
}

/** Maps anything thrown by a Hub call: HubApiError by its status, network failures with a hint. */
export function hubCallError(error: unknown, context: HubErrorContext): MegadocsError {
  if (error instanceof MegadocsError) return error;
  if (error instanceof HubApiError) {
    const message = error.message.replace(/\. URL: .*$/, '');
    return hubStatusError(error.statusCode, null, message, context);
  }
  return new MegadocsError('HUB', `could not reach the Hub at ${context.endpoint} (${causeOf(error)})`, {
    where: context.where,
    hint: 'Check the network and HF_ENDPOINT, then run the command again',
    cause: error,
  });
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: unknown })?.cause;
  return cause ? `${messageOf(error)}: ${messageOf(cause)}` : messageOf(error);
}
