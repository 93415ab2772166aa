#!/usr/bin/env node
/**
 * `npm run build:worker [-- --pack] [-- --out DIR]`: the standalone headless worker, for a machine with only Node.
 *
 * dist/worker/ holds one bundled ESM file (cambrian.mjs: worker, selftest, train, spec and
 * bench engine --no-browser) and, mirrored at their repository paths, the files it reads at run time:
 *   node_modules/webgpu/dist/<platform>-<arch>/dawn.node   the Dawn addon (WebGPU for Node)
 *   public/datasets/*.bin                                  the built datasets (from npm packages)
 *   specs/*.json                                           the reference specs (bench engine)
 *   lib/libvulkan.so.1                                     this machine's Vulkan loader, a fallback
 * Every bundled module's `import.meta.url` is rewritten to its own repository path under the
 * bundle's folder, so the sources' relative paths (../../public/datasets/, the addon beside
 * webgpu's index.js) resolve inside dist/worker/ unchanged: no source edits, no path flags.
 *
 * --pack also writes dist/device/: cambrian-worker.tar.xz (dist/worker/) and node.xz (this Node
 * binary, xz-compressed; reused while the Node version is the same), which scripts/device-check.sh
 * unpacks on a machine that has no Node.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = outDir(process.argv.slice(2)) ?? join(ROOT, 'dist', 'worker');
const DEVICE = join(ROOT, 'dist', 'device');
const ENTRY = join(ROOT, 'src', 'worker', 'bundle', 'main.ts');
/** Reached only by code paths the bundle does not offer (the Chromium part of bench engine). */
const EXTERNAL = ['vite', 'playwright-core', 'playwright'];
const VULKAN_LOADERS = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib64/libvulkan.so.1'];

const LOADERS = { '.ts': 'ts', '.tsx': 'tsx', '.mts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js' };

/**
 * The web app's build must not pull Node-only modules in, so the sources hide some from Vite:
 * `const NODE_GPU_MODULE = '../../gpu/node.ts'; … import(/* @vite-ignore *\/ NODE_GPU_MODULE)`.
 * The Node bundle wants them: put the (UPPER_CASE module constant's) literal back into the import so
 * esbuild follows it.
 */
function inlineHiddenImports(source) {
  return source.replace(/import\(\s*\/\*\s*@vite-ignore\s*\*\/\s*([A-Z][A-Z0-9_]*)\s*\)/g, (call, name) => {
    const literal = source.match(new RegExp(`const ${name}\\s*=\\s*('[^']+'|"[^"]+")`))?.[1];
    return literal ? `import(${literal})` : call;
  });
}

/** Rewrites `import.meta.url` in each module to the URL of the same path under the bundle folder. */
const importMetaUrlPlugin = {
  name: 'import-meta-url-as-in-repo',
  setup(b) {
    b.onLoad({ filter: /\.(m|c)?[jt]sx?$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const loader = LOADERS[extname(args.path)] ?? 'js';
      const inlined = inlineHiddenImports(source);
      if (!inlined.includes('import.meta.url')) return { contents: inlined, loader };
      const repoPath = relative(ROOT, args.path).split('\\').join('/');
      if (repoPath.startsWith('..')) throw new Error(`${args.path} is outside the repository`);
      const url = `new URL(${JSON.stringify(repoPath)}, __cambrianBundleDir).href`;
      return { contents: inlined.replaceAll('import.meta.url', url), loader };
    });
  },
};

async function bundle() {
  const result = await build({
    entryPoints: [ENTRY],
    outfile: join(OUT, 'cambrian.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    plugins: [importMetaUrlPlugin],
    metafile: true,
    logLevel: 'warning',
    banner: {
      // Bundled CommonJS packages call require(); an ESM file has none unless we make one.
      js: [
        '#!/usr/bin/env node',
        "import { createRequire as __cambrianCreateRequire } from 'node:module';",
        'const require = __cambrianCreateRequire(import.meta.url);',
        "const __cambrianBundleDir = new URL('./', import.meta.url);",
      ].join('\n'),
    },
  });
  return Object.keys(result.metafile.inputs).length;
}

function copyInto(from, repoPath) {
  const to = join(OUT, repoPath);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
}

/** The datasets as the dev tree serves them; built from their npm packages when missing. */
async function ensureDatasets() {
  const { register } = await import('tsx/esm/api');
  register();
  const { DATASETS } = await import('../src/data/catalog.ts');
  const { buildDataset, DATASET_DIR } = await import('../src/data/build.ts');
  const files = [];
  for (const [name, entry] of Object.entries(DATASETS)) {
    const path = join(DATASET_DIR, entry.file);
    if (!existsSync(path)) await buildDataset(name);
    files.push(path);
  }
  return files;
}

function copyRuntimeFiles(datasetFiles) {
  const platformDir = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
  copyInto(
    join(ROOT, 'node_modules', 'webgpu', 'dist', platformDir, 'dawn.node'),
    `node_modules/webgpu/dist/${platformDir}/dawn.node`,
  );
  for (const file of datasetFiles) copyInto(file, relative(ROOT, file));
  for (const spec of ['reference-mlp.json', 'reference-cnn.json']) {
    const path = join(ROOT, 'specs', spec);
    if (existsSync(path)) copyInto(path, `specs/${spec}`);
  }
  const loader = VULKAN_LOADERS.find((p) => existsSync(p));
  if (loader) copyInto(loader, 'lib/libvulkan.so.1');
  return platformDir;
}

/** node.xz is slow to make (~1.5 min): reuse it while it was made from the same Node version. */
function packNode() {
  const stamp = join(DEVICE, 'node.version');
  const target = join(DEVICE, 'node.xz');
  if (existsSync(target) && existsSync(stamp) && readFileSync(stamp, 'utf8') === process.version) return;
  writeFileSync(target, execFileSync('xz', ['-6', '-T0', '-c', process.execPath], { maxBuffer: 1 << 30 }));
  writeFileSync(stamp, process.version);
}

function pack() {
  mkdirSync(DEVICE, { recursive: true });
  execFileSync('tar', ['-cJf', join(DEVICE, 'cambrian-worker.tar.xz'), '-C', join(ROOT, 'dist'), 'worker']);
  packNode();
}

function outDir(args) {
  const i = args.indexOf('--out');
  if (i < 0) return undefined;
  if (!args[i + 1]) throw new Error('--out needs a folder');
  return resolve(args[i + 1]);
}

const mib = (path) => (statSync(path).size / 2 ** 20).toFixed(1);

const wantPack = process.argv.includes('--pack');
if (wantPack && OUT !== join(ROOT, 'dist', 'worker')) throw new Error('--pack packs dist/worker: drop --out');
// The folder is replaced: refuse one that holds something other than an earlier bundle.
if (existsSync(OUT) && readdirSync(OUT).length > 0 && !existsSync(join(OUT, 'cambrian.mjs')))
  throw new Error(`${OUT} is not empty and holds no earlier bundle; choose an empty or new folder`);
rmSync(OUT, { recursive: true, force: true });
const inputs = await bundle();
const platformDir = copyRuntimeFiles(await ensureDatasets());
console.log(
  `${relative(process.cwd(), OUT) || '.'}/cambrian.mjs: ${inputs} modules, ${mib(join(OUT, 'cambrian.mjs'))} MiB; Dawn for ${platformDir}`,
);
if (wantPack) {
  pack();
  for (const f of ['cambrian-worker.tar.xz', 'node.xz'])
    console.log(`dist/device/${f}: ${mib(join(DEVICE, f))} MiB`);
}
console.log(`run: node ${join(relative(process.cwd(), OUT), 'cambrian.mjs')} selftest --backend webgpu`);
