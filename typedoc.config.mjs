// TypeDoc: the API reference from the TSDoc comments, one module per entry point of package.json `entryPoints`
// (the same list the build, the exports map and the tests read). `npm run docs` writes docs/api/ (git-ignored).
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

/** @type {Partial<import('typedoc').TypeDocOptions>} */
export default {
  entryPoints: Object.values(pkg.entryPoints),
  out: 'docs/api',
  tsconfig: 'tsconfig.docs.json', // src only: the reference documents the package, not its tests
  name: 'token-guard',
  readme: 'none',
  excludePrivate: true,
  excludeInternal: true,
  // A type that a public signature uses but no entry point exports is a documentation hole (and a user
  // cannot name it): fail the build on it, and on broken {@link}s.
  validation: { notExported: true, invalidLink: true, notDocumented: false },
  // The global interface checks augment to declare their reason codes (see docs/contributing.md): not an export.
  intentionallyNotExported: ['__global.TokenGuardReasonCodes'],
  treatWarningsAsErrors: true,
  logLevel: 'Warn',
};
