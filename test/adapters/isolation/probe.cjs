// Requires one entry point (argv[2]) and fails if any framework package in argv[3] (JSON) was loaded.
const Module = require('node:module');

const [entry, forbiddenJson] = process.argv.slice(2);
const forbidden = JSON.parse(forbiddenJson);
const isForbidden = (file) => forbidden.some((name) => file.includes(`/node_modules/${name}/`));
const hits = [];
// Every resolution, cached or not, goes through here: a framework cannot slip in unseen.
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const file = resolveFilename.call(this, request, ...rest);
  if (isForbidden(file)) hits.push(file);
  return file;
};
require(entry);
hits.push(...Object.keys(require.cache).filter(isForbidden));
if (hits.length) {
  console.error(`isolation: loaded ${[...new Set(hits)].join(', ')}`);
  process.exit(1);
}
console.log('ok');
