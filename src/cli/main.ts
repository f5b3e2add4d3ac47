// The `token-guard` executable (package.json `bin`, built to dist/cli.js with a shebang): runs one command line and
// exits with its code. Explicitly: a policy module may hold open handles (a Redis client) that would keep Node alive.
import { createRequire } from 'node:module';
import { runCli } from './program.js';

// dist/cli.js sits next to package.json's dist/ folder: ../package.json is the package's own manifest.
const version = (() => {
  try {
    return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

const write = (stream: NodeJS.WriteStream) => (text: string) => {
  stream.write(text);
};

const code = await runCli({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd(), stdout: write(process.stdout), stderr: write(process.stderr), version });
// Exit once both streams have drained: writes to a pipe may still be pending.
let pending = 2;
const done = () => {
  if (--pending === 0) process.exit(code);
};
process.stdout.write('', done);
process.stderr.write('', done);
