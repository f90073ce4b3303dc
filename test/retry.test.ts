// The one retry loop (lib/retry.ts): how many tries, which failures go through at once, Retry-After against the
// backoff and its cap, aborts during the wait, and the policy overrides every caller uses.
import { describe, expect, it } from 'vitest';
import {
  HUB_RETRY_POLICY,
  type RetryNotice,
  type RetryPolicy,
  retryDelay,
  retryPolicy,
  sleep,
  TransientError,
  withRetry,
} from '../lib/retry.js';

const fast: RetryPolicy = { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 4 };

/** An attempt that fails with `failures` in turn, then answers 'ok'; it records each try it was given. */
function flaky(failures: unknown[]) {
  const tries: Array<{ attempt: number; last: boolean }> = [];
  const attempt = async (info: { attempt: number; last: boolean }) => {
    tries.push(info);
    const failure = failures[tries.length - 1];
    if (failure !== undefined) throw failure;
    return 'ok';
  };
  return { attempt, tries };
}

const transient = (reason: string, retryAfterMs?: number) =>
  new TransientError(reason, `failed: ${reason}`, retryAfterMs);

describe('withRetry', () => {
  it('tries again after retryable failures and tells onRetry about each wait', async () => {
    const { attempt, tries } = flaky([transient('http_503'), transient('timeout')]);
    const notices: RetryNotice[] = [];
    const result = await withRetry(attempt, { policy: fast, onRetry: (notice) => void notices.push(notice) });
    expect(result).toBe('ok');
    expect(tries.map((info) => info.attempt)).toEqual([1, 2, 3]);
    expect(notices.map((notice) => [notice.attempt, notice.reason])).toEqual([
      [1, 'http_503'],
      [2, 'timeout'],
    ]);
    expect(notices[0]!.error).toBeInstanceOf(TransientError);
  });

  it('makes maxRetries + 1 attempts, marks the last one, then throws its failure as it is', async () => {
    const failures = [1, 2, 3, 4, 5].map((index) => transient(`try_${index}`));
    const { attempt, tries } = flaky(failures);
    await expect(withRetry(attempt, { policy: fast })).rejects.toBe(failures[3]);
    expect(tries).toEqual([
      { attempt: 1, last: false },
      { attempt: 2, last: false },
      { attempt: 3, last: false },
      { attempt: 4, last: true },
    ]);
    const once = flaky([transient('a')]);
    await expect(withRetry(once.attempt, { policy: { ...fast, maxRetries: 0 } })).rejects.toThrow(
      'failed: a',
    );
    expect(once.tries).toEqual([{ attempt: 1, last: true }]);
  });

  it('lets a failure that is not retryable through at once', async () => {
    const fatal = new Error('refused for good');
    const { attempt, tries } = flaky([fatal]);
    let told = 0;
    await expect(withRetry(attempt, { policy: fast, onRetry: () => void told++ })).rejects.toBe(fatal);
    expect(tries).toHaveLength(1);
    expect(told).toBe(0);
  });

  it('asks classify which failures to retry, and under which reason', async () => {
    const { attempt, tries } = flaky([
      Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
      'disk full',
    ]);
    const reasons: string[] = [];
    const failure = await withRetry(attempt, {
      policy: fast,
      classify: (error) =>
        error instanceof Error ? { reason: (error as { code?: string }).code! } : undefined,
      onRetry: (notice) => void reasons.push(notice.reason),
    }).catch((error: unknown) => error);
    expect(failure).toBe('disk full');
    expect(tries).toHaveLength(2);
    expect(reasons).toEqual(['ECONNRESET']);
  });

  it("waits as long as the server's Retry-After says, even past the backoff cap", async () => {
    const { attempt } = flaky([transient('http_429', 120)]);
    const notices: RetryNotice[] = [];
    const started = performance.now();
    await withRetry(attempt, { policy: fast, onRetry: (notice) => void notices.push(notice) });
    expect(notices.map((notice) => notice.delayMs)).toEqual([120]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('caps its own backoff at maxDelayMs', async () => {
    const failures = Array.from({ length: 6 }, () => transient('http_503'));
    const { attempt } = flaky(failures);
    const delays: number[] = [];
    const policy = { maxRetries: 6, baseDelayMs: 1, maxDelayMs: 4 };
    await withRetry(attempt, { policy, onRetry: (notice) => void delays.push(notice.delayMs) });
    expect(delays).toHaveLength(6);
    expect(delays.every((delay) => delay <= 4)).toBe(true);
    expect(delays.slice(2).every((delay) => delay >= 2)).toBe(true);
  });

  it('ends with the abort reason when the signal aborts during the wait', async () => {
    const controller = new AbortController();
    const reason = new Error('stopped by the user');
    const { attempt, tries } = flaky([transient('http_503', 10_000)]);
    const started = performance.now();
    const pending = withRetry(attempt, {
      policy: fast,
      signal: controller.signal,
      onRetry: () => void setTimeout(() => controller.abort(reason), 20),
    });
    await expect(pending).rejects.toBe(reason);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(tries).toHaveLength(1);
  });

  it('does not retry once the signal has aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('aborted');
    const { attempt, tries } = flaky([transient('connection_reset')]);
    const aborting = async (info: { attempt: number; last: boolean }) => {
      controller.abort(reason);
      return attempt(info);
    };
    let told = 0;
    const options = { policy: fast, signal: controller.signal, onRetry: () => void told++ };
    await expect(withRetry(aborting, options)).rejects.toBe(reason);
    expect(tries).toHaveLength(1);
    expect(told).toBe(0);
  });
});

describe('the policy and its pieces', () => {
  it('backs off from baseDelayMs, doubling, jittered between half and all of the ceiling', () => {
    const policy = { maxRetries: 9, baseDelayMs: 100, maxDelayMs: 1_000 };
    expect(retryDelay(0, policy, undefined, () => 0)).toBe(50);
    expect(retryDelay(0, policy, undefined, () => 1)).toBe(100);
    expect(retryDelay(3, policy, undefined, () => 1)).toBe(800);
    expect(retryDelay(4, policy, undefined, () => 0)).toBe(500);
    expect(retryDelay(4, policy, 0)).toBe(0);
  });

  it('overrides a policy by field, with attempts meaning maxRetries + 1', () => {
    expect(retryPolicy(HUB_RETRY_POLICY)).toEqual(HUB_RETRY_POLICY);
    expect(retryPolicy(HUB_RETRY_POLICY, { attempts: 3, baseDelayMs: 1, maxDelayMs: undefined })).toEqual({
      ...HUB_RETRY_POLICY,
      maxRetries: 2,
      baseDelayMs: 1,
    });
    expect(retryPolicy(HUB_RETRY_POLICY, { attempts: 0 }).maxRetries).toBe(0);
  });

  it('sleep rejects with the reason of a signal that is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(sleep(10_000, controller.signal)).rejects.toThrow('gone');
  });
});
