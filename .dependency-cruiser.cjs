/**
 * Hestia's layers (docs/architecture.md → "Layers"), checked by `npm run lint:layers`
 * (part of `npm run lint` and of CI). A module may import its own layer and the layers below
 * it, never one above. Type-only imports count too: a type names a dependency as much as a call.
 *
 * Bottom to top. Each entry: a name and the path pattern of the modules in it.
 */
const LAYERS = [
  ['kernel', '^src/(errors|http-client|lifecycle-states)[.]ts$'],
  ['config', '^src/config/'],
  ['observability', '^src/observability/'],
  ['store', '^src/store/'],
  ['remote', '^src/remote/'],
  ['launchers', '^src/launchers/'],
  ['routing', '^src/routing/'],
  ['auth', '^src/auth/'],
  ['services', '^src/services/'],
  ['machines', '^src/machines/'],
  ['gateway-context', '^src/gateway-context[.]ts$'],
  ['proxy', '^src/proxy/'],
  ['server', '^src/(server|ui)/'],
  // `hestia agent`'s server side (SPEC §15): a separate program beside the gateway's server.
  ['agent', '^src/agent/'],
  ['cli', '^src/(cli/|main[.]ts$)'],
];

/**
 * Siblings: layers of one rank that must not import each other either (launchers, routing and
 * auth know nothing of one another).
 */
const SIBLINGS = [['remote'], ['launchers', 'routing', 'auth'], ['server', 'agent']];

const rank = new Map();
let r = 0;
for (const [name] of LAYERS) {
  const group = SIBLINGS.find((g) => g.includes(name));
  if (group === undefined || group[0] === name) r++;
  rank.set(name, r);
}

const forbidden = [];
for (const [name, pattern] of LAYERS) {
  const above = LAYERS.filter(([other]) => other !== name && rank.get(other) >= rank.get(name)).map(([, p]) => p);
  if (above.length === 0) continue;
  forbidden.push({
    name: `layer-${name}`,
    comment: `${name} may import only the layers below it (docs/architecture.md → Layers)`,
    severity: 'error',
    from: { path: pattern },
    to: { path: above.join('|') },
  });
}
forbidden.push(
  {
    name: 'no-unlayered-source',
    comment: 'every file under src/ belongs to a layer: add it to LAYERS in .dependency-cruiser.cjs',
    severity: 'error',
    from: { path: '^src/', pathNot: LAYERS.map(([, p]) => p).join('|') },
    to: {},
  },
  {
    name: 'no-circular',
    comment: 'no import cycles, type-only ones included',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true },
  },
  {
    name: 'src-not-from-tests',
    comment: 'the gateway never imports test, bench or script code',
    severity: 'error',
    from: { path: '^src/' },
    to: { path: '^(test|bench|scripts)/' },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
  },
};
