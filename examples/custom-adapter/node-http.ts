import type { IncomingMessage, ServerResponse } from 'node:http';
import { authOf, isPromiseLike, nodeGuardRequest, outcomeOf, resolveGuard } from 'token-guard/adapter-kit';
import type { AdapterInput, AuthResult, Decision } from 'token-guard/adapter-kit';

type Handler = (req: IncomingMessage, res: ServerResponse, auth: AuthResult) => void;
type OnError = (res: ServerResponse, err: unknown) => void;

/** Guards a node:http handler: the kit reads the request and shapes every answer; the guard decides. */
export function guarded(policy: AdapterInput, handler: Handler, onError: OnError = (res) => void res.writeHead(500).end()) {
  const { guard, errors } = resolveGuard(policy); // validates the policy and `errors` once, at start-up
  return (req: IncomingMessage, res: ServerResponse): void => {
    const go = (decision: Decision): void => {
      const outcome = outcomeOf(decision, errors);
      if (outcome.action === 'respond') {
        res.writeHead(outcome.response.status, outcome.response.headers).end(outcome.response.body);
      } else if (outcome.action === 'throw') {
        onError(res, outcome.error); // errors: 'throw': your framework's error path
      } else {
        for (const [name, value] of Object.entries(outcome.headers)) res.setHeader(name, value);
        handler(req, res, authOf(decision));
      }
    };
    // nodeGuardRequest sees a second Authorization header that req.headers drops (answered 400).
    const decision = guard.decide(nodeGuardRequest(req, req.url));
    if (isPromiseLike(decision)) decision.then(go, (err: unknown) => onError(res, err));
    else go(decision); // decided without a store call: same tick, no microtask
  };
}
