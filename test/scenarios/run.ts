// Runs the scenario table against one harness and checks each answer the same way for every adapter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOW } from '../helpers/tokens.js';
import { CASES, type Expectation, type ScenarioCase, type WwwAuthExpectation } from './cases.js';
import { createWorld, type World } from './world.js';
import type { Harness, HarnessFactory, WireResponse } from './harness.js';

/** The `error` attribute of a Bearer challenge, `'bare'` for a challenge without one, `'none'` for no header. */
export function wwwAuthError(header: string | undefined): WwwAuthExpectation | string {
  if (header === undefined) return 'none';
  return /(?:^Bearer |, )error="([^"]*)"/.exec(header)?.[1] ?? 'bare';
}

/** Checks one answer against a case's expectation. */
export function expectAnswer(res: WireResponse, expected: Expectation, extra: Pick<ScenarioCase, 'expectHeaders' | 'expectWwwAuthIncludes'> = {}): void {
  const www = res.headers['www-authenticate'];
  expect({ status: res.status, wwwAuthError: wwwAuthError(www) }).toEqual({ status: expected.expectStatus, wwwAuthError: expected.expectWwwAuthError });
  if (www !== undefined) expect(www).toMatch(/^Bearer(?: |$)/);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  if (expected.expectStatus === 200) {
    // The request went through: the handler echoes the decision it found on the request.
    expect(res.headers['content-type']).toMatch(/^application\/json(;|$)/);
    expect(body).toEqual({ reason: expected.expectReason });
  } else {
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(body).toEqual({
      type: `urn:token-guard:problem:${expected.expectReason}`,
      title: expect.any(String),
      status: expected.expectStatus,
      reason: expected.expectReason,
    });
  }
  for (const [name, pattern] of Object.entries(extra.expectHeaders ?? {})) expect(res.headers[name]).toMatch(pattern);
  if (extra.expectWwwAuthIncludes) expect(www).toContain(extra.expectWwwAuthIncludes);
}

/** Sends one case through a harness, with the world's clock and peer set for it. */
export async function sendCase(world: World, harness: Harness, c: ScenarioCase): Promise<WireResponse> {
  world.now = c.now ?? NOW;
  world.peer = c.clientIp;
  const headers = { ...c.headers(world.fixtures), ...(c.xff !== undefined && { 'x-forwarded-for': c.xff }) };
  return harness.send(c.variant ?? 'main', { method: c.method, path: c.path, headers });
}

/** Registers the whole table as tests against one adapter's harness. */
export function runScenarios(name: string, factory: HarnessFactory): void {
  describe(`${name}: the scenario table`, () => {
    let world: World;
    let harness: Harness;
    beforeAll(async () => {
      world = await createWorld();
      harness = await factory(world);
    });
    afterAll(async () => {
      await harness?.close();
    });

    it.each(CASES)('$name', async (c) => {
      const res = await sendCase(world, harness, c);
      if (harness.whatwg && c.whatwg) expectAnswer(res, c.whatwg);
      else if (harness.caseSensitive === true && c.cased) expectAnswer(res, c.cased);
      else if (harness.caseSensitive === 'mixed' && c.mixedCase) expectAnswer(res, c.mixedCase);
      else expectAnswer(res, c, c);
    });
  });
}
