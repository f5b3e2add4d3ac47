// token-guard/postgres: PostgresStore, API key records and revocations kept durably in PostgreSQL (the app's `pg` Pool).
// The store lives in ./postgres/: store.ts (the class), schema.ts (tables and versioned migrations), options.ts.
export { PostgresStore, type PostgresMigrateResult } from './postgres/store.js';
export type { PostgresStoreOptions, PostgresSweepOptions, PostgresSweepResult } from './postgres/options.js';
export { StoreArgumentError } from './validate.js';
