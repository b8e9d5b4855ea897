/**
 * Step 2 and 5 of deploy/build-image-dir.sh (run by deploy/Dockerfile).
 *
 *   node deploy/image/compile-tree.mjs OUTDIR           compile, prune, stub the dev modules, rewrite manifests
 *   node deploy/image/compile-tree.mjs --check OUTDIR   fail if a devDependency, a .ts source or a dev module is left
 *
 * OUTDIR is the output of `pnpm deploy --prod`: the service at its root and the @sealpost/* workspace packages
 * injected (copied) under node_modules/.pnpm. Each of those packages is compiled from TypeScript to CommonJS with
 * @swc/core, with the options jest uses for the tests (deploy/../jest.config.js), so the image runs plain `node`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');

const SWC_OPTIONS = {
  jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
  module: { type: 'commonjs' },
  sourceMaps: false,
  swcrc: false,
  configFile: false,
};
/** Folders and files of a workspace package that never belong in an image. */
const PRUNE_DIRS = ['test', 'bench', 'tools', 'node_modules/.cache'];
const PRUNE_FILES = [/^tsconfig.*\.json$/, /^jest\.config\./, /\.tsbuildinfo$/, /^pnpm-(lock|workspace)\.yaml$/];
const TEST_SOURCE = /\.(test|spec)\.ts$|(^|\/)__tests__\//;
/**
 * Development modules: code paths production mode refuses (the dev CA, dev operator tokens). Images ship a stub
 * in their place that exports the same names, keeps the constants production needs to recognise and refuse dev
 * material, and throws DEV_MODE_REFUSED from every function (DESIGN.md: "images ship without the dev modules").
 */
const DEV_MODULES = [
  { pkg: '@sealpost/access', file: 'src/dev-ca.js', stub: 'access-dev-ca.js' },
  { pkg: '@sealpost/access', file: 'src/dev-token.js', stub: 'access-dev-token.js' },
];
const DEV_STUB_MARK = 'sealpost-image-stub';

const args = process.argv.slice(2);
const check = args[0] === '--check';
const out = path.resolve(args[check ? 1 : 0] ?? '');
if (!fs.existsSync(path.join(out, 'package.json'))) fail(`${out} is not a deployed package (no package.json)`);

if (check) runChecks();
else build();

function build() {
  const swc = require('@swc/core');
  const packages = workspacePackages();
  let compiled = 0;
  for (const dir of packages) {
    for (const name of PRUNE_DIRS) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    for (const entry of fs.readdirSync(dir)) {
      if (PRUNE_FILES.some((re) => re.test(entry))) fs.rmSync(path.join(dir, entry), { force: true });
    }
    for (const file of walk(dir, (d) => path.basename(d) !== 'node_modules')) {
      if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
      if (TEST_SOURCE.test(path.relative(dir, file))) {
        fs.rmSync(file);
        continue;
      }
      const { code } = swc.transformFileSync(file, { ...SWC_OPTIONS, filename: file });
      fs.writeFileSync(file.replace(/\.ts$/, '.js'), code);
      fs.rmSync(file);
      compiled++;
    }
    rewriteManifest(dir);
  }
  stubDevModules(packages);
  // Build leftovers of native modules: object files and test extensions are not needed to load them.
  for (const dir of walk(path.join(out, 'node_modules', '.pnpm'), () => true, { dirs: true })) {
    if (/\/build\/Release\/(obj|obj\.target|\.deps)$/.test(dir)) fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const file of walk(path.join(out, 'node_modules', '.pnpm'), () => true)) {
    if (file.endsWith('/build/Release/test_extension.node')) fs.rmSync(file);
  }
  // better-sqlite3 loads build/Release/better_sqlite3.node and lib/; its bundled SQLite and C++ sources are build inputs.
  for (const dir of walk(path.join(out, 'node_modules', '.pnpm'), () => true, { dirs: true })) {
    if (/\/node_modules\/better-sqlite3\/(deps|src)$/.test(dir)) fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stderr.write(`[compile-tree] ${compiled} files compiled in ${packages.length} packages\n`);
}

/** The service at the root and every injected @sealpost/* package (real directories, not symlinks). */
function workspacePackages() {
  const dirs = [out];
  const store = path.join(out, 'node_modules', '.pnpm');
  for (const entry of fs.existsSync(store) ? fs.readdirSync(store) : []) {
    if (!entry.startsWith('@sealpost+')) continue;
    const scope = path.join(store, entry, 'node_modules', '@sealpost');
    for (const name of fs.readdirSync(scope)) {
      const dir = path.join(scope, name);
      if (fs.lstatSync(dir).isDirectory()) dirs.push(dir);
    }
  }
  return dirs;
}

function rewriteManifest(dir) {
  const file = path.join(dir, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  const js = (p) => (typeof p === 'string' ? p.replace(/\.ts$/, '.js') : p);
  if (pkg.main) pkg.main = js(pkg.main);
  if (pkg.bin) pkg.bin = typeof pkg.bin === 'string' ? js(pkg.bin) : mapValues(pkg.bin, js);
  if (pkg.exports) pkg.exports = typeof pkg.exports === 'string' ? js(pkg.exports) : mapValues(pkg.exports, js);
  delete pkg.types;
  delete pkg.devDependencies;
  delete pkg.scripts;
  fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
}

function mapValues(obj, fn) {
  return Object.fromEntries(
    Object.entries(obj).map(([k, v]) => [k, v && typeof v === 'object' ? mapValues(v, fn) : fn(v)]),
  );
}

function stubDevModules(packages) {
  for (const { pkg, file, stub } of DEV_MODULES) {
    const dir = packages.find((d) => JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).name === pkg);
    if (dir === undefined) continue; // the service does not use that package
    const target = path.join(dir, file);
    if (!fs.existsSync(target)) fail(`dev module ${pkg}/${file} not found: update DEV_MODULES in ${HERE}`);
    // The stub must export exactly the names of the module it replaces, or a caller would get undefined.
    const originalModule = require(target);
    const original = Object.keys(originalModule).sort();
    const stubFile = path.join(HERE, 'stubs', stub);
    fs.copyFileSync(stubFile, `${target}.stub.js`); // beside its siblings, so that its lazy requires resolve
    const stubModule = require(`${target}.stub.js`);
    const stubbed = Object.keys(stubModule).sort();
    if (JSON.stringify(original) !== JSON.stringify(stubbed)) {
      fail(`stub ${stub} exports [${stubbed}] but ${pkg}/${file} exports [${original}]: update the stub`);
    }
    // Constants (the dev trust domain, CA name, issuer) must equal the originals: production refuses dev material by them.
    for (const name of original) {
      if (typeof originalModule[name] !== 'function' && originalModule[name] !== stubModule[name]) {
        fail(`stub ${stub}: ${name} differs from ${pkg}/${file}: update the stub`);
      }
    }
    fs.renameSync(`${target}.stub.js`, target);
  }
}

function runChecks() {
  const problems = [];
  // Every devDependency of the repository's manifests (root and workspace packages).
  const manifests = [path.join(ROOT, 'package.json')];
  for (const group of ['packages', 'services']) {
    for (const name of fs.readdirSync(path.join(ROOT, group))) {
      const file = path.join(ROOT, group, name, 'package.json');
      if (fs.existsSync(file)) manifests.push(file);
    }
  }
  // Tools that are never a runtime dependency, whatever any manifest says.
  const devNames = new Set([
    '@sealpost/testkit',
    'jest',
    'typescript',
    '@swc/core',
    '@swc/jest',
    'tsx',
    'esbuild',
    'ts-proto',
  ]);
  const prodNames = new Set();
  for (const file of manifests) {
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const name of Object.keys(manifest.devDependencies ?? {})) devNames.add(name);
    for (const name of Object.keys(manifest.dependencies ?? {})) prodNames.add(name);
  }
  // A devDependency of one package that is a production dependency of another (e.g. jose, @grpc/grpc-js) may
  // be present; so may one a production dependency pulls in, listed here with the reason.
  const allowed = new Set([
    '@types/node', // a dependency of protobufjs (via @grpc/proto-loader), not of Sealpost's own packages
  ]);
  for (const name of [
    '@sealpost/testkit',
    'jest',
    'typescript',
    '@swc/core',
    '@swc/jest',
    'tsx',
    'esbuild',
    'ts-proto',
  ]) {
    prodNames.delete(name);
  }
  for (const name of prodNames) devNames.delete(name);
  const store = path.join(out, 'node_modules', '.pnpm');
  const present = new Set();
  for (const entry of fs.existsSync(store) ? fs.readdirSync(store) : []) {
    // `jest@30.5.2`, `@swc+core@1.16.22`, `foo@1.0.0_bar@2.0.0` (peer suffix), `@sealpost+testkit@file+…`
    const m = /^(@[^+@]+\+[^@]+|[^@]+)@/.exec(entry);
    if (m) present.add(m[1].replace(/^@([^+]+)\+/, '@$1/'));
  }
  for (const name of devNames) {
    if (present.has(name) && !allowed.has(name)) problems.push(`devDependency ${name} is in the image`);
  }
  for (const file of walk(out, () => true)) {
    const rel = path.relative(out, file);
    const inWorkspacePkg = !rel.startsWith('node_modules') || rel.includes('/node_modules/@sealpost/');
    if (inWorkspacePkg && file.endsWith('.ts') && !file.endsWith('.d.ts'))
      problems.push(`TypeScript source left: ${rel}`);
  }
  for (const dir of workspacePackages()) {
    const name = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name;
    for (const { pkg, file } of DEV_MODULES) {
      if (pkg === name && !fs.readFileSync(path.join(dir, file), 'utf8').includes(DEV_STUB_MARK)) {
        problems.push(`dev module ${pkg}/${file} is not the stub`);
      }
    }
  }
  if (problems.length > 0) fail(`image tree check failed:\n  ${problems.join('\n  ')}`);
  process.stderr.write(
    `[compile-tree] check passed: no devDependency (${devNames.size} names), no .ts, dev modules stubbed\n`,
  );
}

function* walk(dir, enter, options = {}) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (options.dirs) yield full;
      if (enter(full) && fs.existsSync(full)) yield* walk(full, enter, options);
    } else if (entry.isFile() && !options.dirs) {
      yield full;
    }
  }
}

function fail(message) {
  process.stderr.write(`[compile-tree] ${message}\n`);
  process.exit(1);
}
