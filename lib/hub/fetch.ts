// The fetch interface over the Hub request function, for @huggingface/hub: the library takes a `fetch` in every
// call, so listing, repo creation and commits follow the same token, redirect and retry rules as our own reads.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { HubRequest, HubResponse } from './client.js';

type RequestFunction = (url: string, init?: HubRequest) => Promise<HubResponse>;

export function fetchOver(request: RequestFunction): typeof fetch {
  const hubFetch = async (input: Parameters<typeof fetch>[0], init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === 'object' && 'url' in input ? input.url : String(input);
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    if (init.body instanceof Blob) headers['content-length'] = String(init.body.size);
    const response = await request(url, {
      method: init.method,
      headers,
      body: resendable(init.body),
      signal: init.signal ?? undefined,
    });
    return toResponse(response, init.method);
  };
  return hubFetch as typeof fetch;
}

/** A body that can be sent again on a retry: a Blob (the library's file uploads) becomes a fresh stream each time. */
function resendable(body: unknown): HubRequest['body'] {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (body instanceof Blob) return () => Readable.fromWeb(body.stream() as WebReadableStream<Uint8Array>);
  throw new TypeError(`unsupported request body: ${Object.prototype.toString.call(body)}`);
}

function toResponse(response: HubResponse, method: string | undefined): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, value);
  }
  const empty = method?.toUpperCase() === 'HEAD' || [204, 205, 304].includes(response.status);
  if (empty) response.body.dump();
  const body = empty ? null : (Readable.toWeb(response.body) as ReadableStream<Uint8Array>);
  const result = new Response(body, { status: response.status, headers });
  Object.defineProperty(result, 'url', { value: response.url });
  return result;
}
