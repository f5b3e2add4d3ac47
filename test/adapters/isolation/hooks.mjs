// Resolve hook for the ESM isolation probe: resolving a forbidden framework package is an error.
let forbidden = [];

export async function initialize(data) {
  forbidden = data.forbidden;
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  const hit = forbidden.find((name) => result.url.includes(`/node_modules/${name}/`));
  if (hit) throw new Error(`isolation: ${hit} was loaded (${specifier} from ${context.parentURL})`);
  return result;
}
