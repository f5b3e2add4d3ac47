// The scenario table against the fetch adapter, with web-standard Request objects.
import { runScenarios } from './run.js';
import { fetchHarness } from './harness.js';

runScenarios('fetch', fetchHarness);
