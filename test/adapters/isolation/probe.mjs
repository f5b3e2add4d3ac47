// Imports one entry point (argv[2]) and fails if any framework package in argv[3] (JSON) was loaded.
import { createRequire, register } from 'node:module';

const [entry, forbiddenJson] = process.argv.slice(2);
const forbidden = JSON.parse(forbiddenJson);
register('./hooks.mjs', import.meta.url, { data: { forbidden } });
await import(entry);
// CommonJS packages imported from ESM also land in the CJS cache: check it as well.
const cache = Object.keys(createRequire(import.meta.url).cache);
const hits = cache.filter((file) => forbidden.some((name) => file.includes(`/node_modules/${name}/`)));
if (hits.length) {
  console.error(`isolation: loaded ${hits.join(', ')}`);
  process.exit(1);
}
console.log('ok');
