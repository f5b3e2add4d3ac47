// One guard met twice on a request's way in Express: on the app, then again on a router, as an app that mounts
// tokenGuard() globally and again for one router does.
import express, { type RequestHandler } from 'express';

/** An Express app with `guard` on the app and again on a router, `between` (if any) in the middle, answering 'ok' on /:section/:id. */
export function expressMountedTwice(guard: RequestHandler, between?: RequestHandler): express.Express {
  const app = express();
  app.use(guard);
  if (between) app.use(between);
  const router = express.Router();
  router.use(guard);
  router.all('/:section/:id', (_req, res) => void res.send('ok'));
  app.use(router);
  return app;
}
