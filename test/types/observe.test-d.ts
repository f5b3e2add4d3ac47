// Type-level tests for the observability surface: onDecision's second argument, otel() and the dashboard.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expectTypeOf, it } from 'vitest';
import type { DecisionEvent, GuardTelemetry, TokenGuardPolicy } from '../../src/index.js';
import { otel } from '../../src/observe/otel.js';
import { dashboardHandler, decisionRecorder, type DecisionSnapshot } from '../../src/observe/dashboard.js';

describe('observability types', () => {
  it('hands onDecision the event and the framework request as unknown (the app narrows it)', () => {
    expectTypeOf<NonNullable<TokenGuardPolicy['onDecision']>>().parameters.toEqualTypeOf<[event: DecisionEvent, request?: unknown]>();
    expectTypeOf<DecisionEvent['requestId']>().toEqualTypeOf<string | undefined>();
  });

  it('otel() is a telemetry sink for the policy', () => {
    expectTypeOf(otel()).toEqualTypeOf<GuardTelemetry>();
    expectTypeOf<TokenGuardPolicy['telemetry']>().toEqualTypeOf<GuardTelemetry | undefined>();
  });

  it('the recorder plugs into onDecision and the handler is a Node request handler', () => {
    const recorder = decisionRecorder();
    const policy: Pick<TokenGuardPolicy, 'onDecision'> = { onDecision: recorder.onDecision };
    expectTypeOf(policy.onDecision).not.toBeAny();
    expectTypeOf(recorder.snapshot()).toEqualTypeOf<DecisionSnapshot>();
    expectTypeOf(dashboardHandler({ recorder })).toBeCallableWith({} as IncomingMessage, {} as ServerResponse);
  });
});
