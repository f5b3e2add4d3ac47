// token-guard/postgres: PostgresStore, API key records and revocations kept durably in PostgreSQL (the app's `pg` Pool).
// The store lives in ./postgres/: store.ts (the class), rows.ts (values to and from rows), schema.ts (tables and
// versioned migrations), migrate.ts (how `migrate()` applies them), options.ts.
export type { PostgresMigrateResult } from './postgres/migrate.js';
export { PostgresStore } from './postgres/store.js';
export type { PostgresStoreOptions, PostgresSweepOptions, PostgresSweepResult } from './postgres/options.js';
export { StoreArgumentError } from './validate.js';
