// The scenario table against the Koa adapter (Koa 3 + @koa/router), over real sockets with supertest.
import { runScenarios } from './run.js';
import { koaHarness } from './harness.js';

runScenarios('Koa', koaHarness);
