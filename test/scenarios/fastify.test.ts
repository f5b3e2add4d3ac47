// The scenario table against the Fastify plugin: every case through inject, and again on a listening server.
import { runScenarios } from './run.js';
import { fastifyInjectHarness, fastifyListenHarness } from './harness.js';

runScenarios('Fastify (inject)', fastifyInjectHarness);
runScenarios('Fastify (listening server)', fastifyListenHarness);
