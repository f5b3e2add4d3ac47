// `npm run sync:entry-points`: rewrites package.json exports/typesVersions and tsconfig paths from package.json entryPoints.
import { syncEntryPoints } from './entry-points.js';

const changed = syncEntryPoints();
console.log(changed.length ? `updated ${changed.join(', ')}` : 'entry points already in sync');
