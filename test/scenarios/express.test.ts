// The scenario table against the Express adapter, over real sockets with supertest.
import { runScenarios } from './run.js';
import { expressHarness } from './harness.js';

runScenarios('Express', expressHarness);
