/**
 * `cambrian bench engine`: training throughput of the integer-exact engine on the reference task
 * (specs/reference-mlp.json) on every backend at hand, side by side in one run:
 *   1. the CPU reference in Node, WASM kernels and their TypeScript twins, on the MLP and the CNN;
 *   2. WebGPU in Node (Dawn: the GPU's Vulkan driver, or SwiftShader without one);
 *   3. WebGPU in headless Chromium (Debian's chromium, --enable-unsafe-webgpu), page main thread;
 *   4. TensorFlow.js's WebGL and WebGPU backends training the same MLP in float32 in the same
 *      browser (same batch, steps, learning rate, momentum and batches);
 *   5. the reference CNN (specs/reference-cnn.json, else a stand-in named in the output) on TF.js's
 *      WebGL and WebGPU backends and on Cambrian in Chromium;
 *   6. int8 matmul (Cambrian's kernel) GOPS beside TensorFlow.js's f32 matMul GFLOP/s, n×n×n.
 * Each trainer's first step is a warm-up (pipeline compilation) and is not timed; the timed steps
 * exclude setup and validation. Every Cambrian backend must end on the CPU's weights hash.
 * Writes bench-results/engine.json (or --out).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadDataset } from '../data/node.ts';
import { CpuTrainer, hashI32, type KernelChoice } from '../engine/train-cpu.ts';
import type { Dataset } from '../engine/types.ts';
import { contextFromSession, type GpuContext } from '../engine/webgpu/context.ts';
import { timeMatmulI8 } from '../engine/webgpu/matmul.ts';
import { GpuTrainer } from '../engine/webgpu/train.ts';
import { adapterLabel } from '../gpu/device.ts';
import { createNodeGpuSession } from '../gpu/node.ts';
import {
  type AnyTaskSpec,
  isV2,
  parseAnyTaskSpec,
  parseTaskSpec,
  type TaskSpec,
  type TaskSpecV2,
} from '../protocol/spec.ts';
import type { BrowserBenchConfig, BrowserBenchResult, Missing, TfjsRun } from './engine-page.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const REFERENCE_SPEC = join(ROOT, 'specs', 'reference-mlp.json');
const REFERENCE_CNN = join(ROOT, 'specs', 'reference-cnn.json');

/**
 * Used while specs/reference-cnn.json is not in the checkout: a textbook small CNN on the reference
 * MLP's data, split and training settings (conv 16 → pool → conv 32 → pool → dense 128).
 */
function standInCnn(mlp: TaskSpec): TaskSpecV2 {
  const conv = (channels: number) =>
    ({ op: 'conv', channels, kernel: 3, stride: 1, activation: 'relu', residual: false }) as const;
  return parseAnyTaskSpec({
    v: 2,
    dataset: mlp.dataset,
    split: mlp.split,
    model: {
      input: { channels: 1, height: 28, width: 28 },
      classes: 10,
      layers: [
        conv(16),
        { op: 'maxpool' },
        conv(32),
        { op: 'maxpool' },
        { op: 'flatten' },
        { op: 'dense', units: 128, activation: 'relu', residual: false },
      ],
    },
    training: mlp.training,
    checkpointEvery: mlp.checkpointEvery,
  }) as TaskSpecV2;
}

async function referenceCnn(mlp: TaskSpec): Promise<{ spec: TaskSpecV2; source: string }> {
  const text = await readFile(REFERENCE_CNN, 'utf8').catch(() => null);
  if (text === null) return { spec: standInCnn(mlp), source: 'stand-in (specs/reference-cnn.json missing)' };
  const spec = parseAnyTaskSpec(JSON.parse(text));
  if (!isV2(spec)) throw new Error(`${REFERENCE_CNN} is not a v2 spec`);
  if (spec.dataset.sha256 !== mlp.dataset.sha256)
    throw new Error(`${REFERENCE_CNN} must use the MLP's dataset`);
  return { spec, source: REFERENCE_CNN };
}

export const help = `usage: cambrian bench engine [--steps N] [--cnn-steps N] [--sizes 256,1024,2048] [--no-browser] [--out FILE]

Trains the reference task (specs/reference-mlp.json) on the CPU reference (its WASM kernels and
their TypeScript twins, both the MLP and the reference CNN), on WebGPU in Node (Dawn)
and on WebGPU in headless Chromium, trains the same MLP with TensorFlow.js's WebGL and WebGPU backends
in the same browser, trains the reference CNN (specs/reference-cnn.json, or a stand-in while it is
missing) with both TensorFlow.js backends and with Cambrian, and
compares int8 matmul GOPS with TensorFlow.js f32 matMul GFLOP/s.
  --steps N        MLP training steps to run per backend (default: the spec's, 375)
  --cnn-steps N    CNN training steps per backend (default 10: TF.js WebGPU on SwiftShader is slow)
  --sizes LIST     matmul sizes n (n×n×n), default 256,1024,2048
  --no-browser     skip the Chromium part
  --chromium PATH  the browser (default: $CHROMIUM_PATH or /usr/bin/chromium)
  --out FILE       JSON output (default bench-results/engine.json)
On a machine without a GPU both WebGPU runs use SwiftShader (CPU-emulated): their absolute figures
measure the emulator, not a GPU.`;

/** Chromium flags for WebGPU in headless mode (as the brief and playwright.config.ts use). */
const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--no-sandbox',
  '--headless',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

interface TimedRun {
  steps: number;
  seconds: number;
  samplesPerSecond: number;
}

function timedRun(steps: number, batch: number, seconds: number): TimedRun {
  return { steps, seconds, samplesPerSecond: (steps * batch) / seconds };
}

/** The CPU reference with one kernel set ('wasm': the WASM SIMD kernels, 'ts': their TypeScript twins). */
async function cpuReference(spec: AnyTaskSpec, dataset: Dataset, steps: number, kernels: KernelChoice) {
  const trainer = new CpuTrainer(spec, dataset, undefined, { kernels });
  trainer.runStep();
  const start = performance.now();
  for (let t = 1; t < steps; t++) trainer.runStep();
  const seconds = (performance.now() - start) / 1000;
  return { ...timedRun(steps - 1, spec.training.batch, seconds), weightsHash: hashI32(trainer.params) };
}

function cpuRow(name: string, run: TimedRun & { weightsHash: string }, expected: string): string[] {
  const same = run.weightsHash === expected ? 'yes' : 'NO';
  return [name, 'CPU', String(run.steps), fmt(run.seconds, 2), fmt(run.samplesPerSecond), same];
}

async function nodeWebGpu(ctx: GpuContext, spec: TaskSpec, dataset: Dataset, steps: number) {
  const trainer = await GpuTrainer.create(ctx, spec, dataset);
  try {
    await trainer.submitSteps(1);
    const start = performance.now();
    await trainer.runPipelined(steps);
    const seconds = (performance.now() - start) / 1000;
    const state = await trainer.state();
    return {
      ...timedRun(steps - 1, spec.training.batch, seconds),
      weightsHash: hashI32(state.params),
      dispatchesPerStep: trainer.dispatchesPerStep,
      stepDispatches: trainer.stepDispatchNames(),
    };
  } finally {
    trainer.destroy();
  }
}

async function nodeMatmul(ctx: GpuContext, n: number) {
  const { gops, reps } = await timeMatmulI8(ctx, n);
  return { n, int8Gops: gops, reps };
}

/** Serves the sources through Vite's dev server and runs engine-page.ts in headless Chromium. */
async function browserBench(config: BrowserBenchConfig, chromiumPath: string): Promise<BrowserBenchResult> {
  const { createServer } = await import('vite');
  const { chromium } = await import('playwright-core');
  const server = await createServer({
    root: ROOT,
    configFile: join(ROOT, 'vite.config.ts'),
    logLevel: 'error',
    server: { port: 0, host: '127.0.0.1', strictPort: false, hmr: false },
    // Pre-bundle the page's dependencies at start-up so no re-optimisation reloads the page mid-run.
    optimizeDeps: { entries: ['src/bench/engine-page.ts'] },
  });
  await server.listen();
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('the Vite dev server did not report a URL');
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: CHROMIUM_ARGS,
    headless: true,
  });
  try {
    const page = await browser.newPage();
    page.on('pageerror', (err) => console.error(`[chromium] ${err.message}`));
    // A blank page on the server's origin: the bench module is imported into it, not the app.
    await page.route(`${url}__bench`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: '<!doctype html><title>cambrian bench engine</title>',
      }),
    );
    await page.goto(`${url}__bench`);
    return await page.evaluate(async (cfg) => {
      const path = '/src/bench/engine-page.ts';
      const mod = (await import(/* @vite-ignore */ path)) as typeof import('./engine-page.ts');
      return mod.runBrowserBench(cfg);
    }, config);
  } finally {
    await browser.close();
    await server.close();
  }
}

function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ')).join('\n');
}

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '—');

function tfjsRow(model: string, backend: string, run: TfjsRun | Missing, label: string): string[] {
  const name = `TensorFlow.js ${backend} f32 (Chromium)`;
  if ('error' in run) return [name, label, '—', '—', '—', `failed: ${run.error}`];
  const note = model === 'MLP' ? 'n/a (float)' : `loss ${fmt(run.finalLoss, 3)}`;
  return [name, label, String(run.steps), fmt(run.seconds, 2), fmt(run.samplesPerSecond), note];
}

/** TensorFlow.js's fastest backend that ran, or null if none did. */
function fastestTfjs(runs: Record<string, TfjsRun | Missing>): TfjsRun | null {
  const ran = Object.values(runs).filter((r): r is TfjsRun => !('error' in r));
  return ran.reduce<TfjsRun | null>((a, b) => (a && a.samplesPerSecond >= b.samplesPerSecond ? a : b), null);
}

export async function run(argv: string[]): Promise<number> {
  const { values: opts } = parseArgs({
    args: argv,
    strict: true,
    options: {
      steps: { type: 'string' },
      sizes: { type: 'string', default: '256,1024,2048' },
      'cnn-steps': { type: 'string', default: '10' },
      'no-browser': { type: 'boolean', default: false },
      chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
      out: { type: 'string', default: join(ROOT, 'bench-results', 'engine.json') },
    },
  });
  const spec = parseTaskSpec(JSON.parse(await readFile(REFERENCE_SPEC, 'utf8')));
  const steps = opts.steps === undefined ? spec.training.steps : Number(opts.steps);
  if (!Number.isSafeInteger(steps) || steps < 2 || steps > spec.training.steps)
    throw new Error(`--steps must be an integer in [2, ${spec.training.steps}]`);
  const cnnSteps = Number(opts['cnn-steps']);
  if (!Number.isSafeInteger(cnnSteps) || cnnSteps < 2) throw new Error('--cnn-steps must be an integer ≥ 2');
  const sizes = opts.sizes.split(',').map(Number);
  if (sizes.some((n) => !Number.isSafeInteger(n) || n < 4 || n % 4 !== 0))
    throw new Error('--sizes must be multiples of 4');
  const dataset = await loadDataset(spec.dataset.name, spec.dataset.sha256);
  const batch = spec.training.batch;
  console.log(`reference task: ${REFERENCE_SPEC}, ${steps} steps of batch ${batch} (first step untimed)`);

  console.log('CPU reference (WASM kernels, then their TypeScript twins) …');
  const cpu = await cpuReference(spec, dataset, steps, 'wasm');
  const cpuTs = await cpuReference(spec, dataset, steps, 'ts');

  console.log('WebGPU in Node (Dawn) …');
  const session = await createNodeGpuSession();
  const ctx = await contextFromSession(session);
  const report = await session.report();
  const node = await nodeWebGpu(ctx, spec, dataset, steps);
  const nodeMatmuls = [];
  for (const n of sizes) nodeMatmuls.push(await nodeMatmul(ctx, n));
  session.destroy();

  const cnnRef = await referenceCnn(spec);
  const cnnSource = cnnRef.source;
  if (cnnSteps > cnnRef.spec.training.steps)
    throw new Error(`--cnn-steps must be ≤ ${cnnRef.spec.training.steps}`);
  console.log(`CPU reference on the CNN (${cnnSteps} steps, WASM then TypeScript) …`);
  const cpuCnn = await cpuReference(cnnRef.spec, dataset, cnnSteps, 'wasm');
  const cpuCnnTs = await cpuReference(cnnRef.spec, dataset, cnnSteps, 'ts');

  let browser: BrowserBenchResult | { error: string } | null = null;
  if (!opts['no-browser']) {
    console.log('WebGPU and TensorFlow.js (WebGL, WebGPU) in Chromium …');
    const cnn = cnnRef;
    try {
      browser = await browserBench(
        {
          spec,
          cnnSpec: cnn.spec,
          datasetUrl: `/datasets/${spec.dataset.name}.bin`,
          steps,
          cnnSteps,
          matmulSizes: sizes,
        },
        opts.chromium,
      );
    } catch (err) {
      browser = { error: err instanceof Error ? err.message : String(err) };
    }
  }
  const inBrowser = browser && !('error' in browser) ? browser : null;

  const rows = [
    ['backend', 'device', 'steps', 'seconds', 'samples/s', 'weights = CPU'],
    cpuRow('CPU reference, WASM (Node)', cpu, cpu.weightsHash),
    cpuRow('CPU reference, TypeScript (Node)', cpuTs, cpu.weightsHash),
    [
      'Cambrian WebGPU (Node, Dawn)',
      adapterLabel(report),
      String(node.steps),
      fmt(node.seconds, 2),
      fmt(node.samplesPerSecond),
      node.weightsHash === cpu.weightsHash ? 'yes' : 'NO',
    ],
  ];
  if (inBrowser) {
    const label = `${inBrowser.adapter.vendor} / ${inBrowser.adapter.architecture}`;
    rows.push([
      'Cambrian WebGPU (Chromium)',
      label,
      String(inBrowser.cambrian.steps),
      fmt(inBrowser.cambrian.seconds, 2),
      fmt(inBrowser.cambrian.samplesPerSecond),
      inBrowser.cambrian.weightsHash === cpu.weightsHash ? 'yes' : 'NO',
    ]);
    for (const [backend, run] of Object.entries(inBrowser.tfjs))
      rows.push(tfjsRow('MLP', backend, run, label));
  }
  console.log(`\n${formatTable(rows)}`);
  console.log(`dispatches per training step: ${node.dispatchesPerStep} (${node.stepDispatches.join(', ')})`);
  const fastestMlp = inBrowser ? fastestTfjs(inBrowser.tfjs) : null;
  const ratio =
    inBrowser && fastestMlp ? inBrowser.cambrian.samplesPerSecond / fastestMlp.samplesPerSecond : null;
  if (ratio !== null && fastestMlp)
    console.log(
      `MLP: Cambrian / TensorFlow.js's fastest (${fastestMlp.backend}) in Chromium: ${fmt(ratio, 2)}×`,
    );

  const cnn = inBrowser?.cnn ?? null;
  let cnnRatio: number | null = null;
  const cnnRows = [
    ['reference CNN', 'device', 'steps', 'seconds', 'samples/s', 'weights = CPU (WASM)'],
    cpuRow('CPU reference, WASM (Node)', cpuCnn, cpuCnn.weightsHash),
    cpuRow('CPU reference, TypeScript (Node)', cpuCnnTs, cpuCnn.weightsHash),
  ];
  if (cnn && inBrowser) {
    const label = `${inBrowser.adapter.vendor} / ${inBrowser.adapter.architecture}`;
    if ('error' in cnn.cambrian)
      cnnRows.push(['Cambrian WebGPU (Chromium)', label, '—', '—', '—', cnn.cambrian.error]);
    else
      cnnRows.push([
        'Cambrian WebGPU (Chromium)',
        label,
        String(cnn.cambrian.steps),
        fmt(cnn.cambrian.seconds, 2),
        fmt(cnn.cambrian.samplesPerSecond),
        cnn.cambrian.weightsHash === cpuCnn.weightsHash ? 'yes' : 'NO',
      ]);
    for (const [backend, run] of Object.entries(cnn.tfjs)) cnnRows.push(tfjsRow('CNN', backend, run, label));
    const fastestCnn = fastestTfjs(cnn.tfjs);
    if (fastestCnn && !('error' in cnn.cambrian)) {
      cnnRatio = cnn.cambrian.samplesPerSecond / fastestCnn.samplesPerSecond;
    }
  }
  console.log(`\n${cnnSource}\n${formatTable(cnnRows)}`);
  if (cnnRatio !== null) console.log(`CNN: Cambrian / TensorFlow.js's fastest: ${fmt(cnnRatio, 2)}×`);

  const mm = [['n', 'int8 GOPS (Node)', 'int8 GOPS (Chromium)', 'TF.js f32 GFLOP/s (Chromium)', 'ratio']];
  for (const [i, n] of sizes.entries()) {
    const b = inBrowser?.matmul[i];
    mm.push([
      String(n),
      fmt(nodeMatmuls[i].int8Gops, 2),
      b ? fmt(b.int8Gops, 2) : '—',
      b ? fmt(b.tfjsF32Gflops, 2) : '—',
      b ? `${fmt(b.int8Gops / b.tfjsF32Gflops, 2)}×` : '—',
    ]);
  }
  console.log(`\n${formatTable(mm)}`);
  if (browser && 'error' in browser) console.log(`\nChromium part failed: ${browser.error}`);
  if (report.isSoftware)
    console.log(
      '\nNote: the WebGPU adapter is SwiftShader (CPU-emulated): WebGPU figures measure the emulator.',
    );

  const json = {
    spec: REFERENCE_SPEC,
    steps,
    batch,
    date: new Date().toISOString(),
    cpu,
    cpuTs,
    cpuCnn,
    cpuCnnTs,
    node: { adapter: report, packedDot: ctx.packedDot, ...node, matmul: nodeMatmuls },
    browser,
    cnnSpec: cnnSource,
    ratioCambrianOverTfjs: ratio,
    ratioCambrianOverTfjsCnn: cnnRatio,
  };
  await mkdir(dirname(opts.out), { recursive: true });
  await writeFile(opts.out, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\nwrote ${opts.out}`);
  const identical =
    cpuTs.weightsHash === cpu.weightsHash &&
    cpuCnnTs.weightsHash === cpuCnn.weightsHash &&
    node.weightsHash === cpu.weightsHash &&
    (!inBrowser || inBrowser.cambrian.weightsHash === cpu.weightsHash) &&
    (!cnn || 'error' in cnn.cambrian || cnn.cambrian.weightsHash === cpuCnn.weightsHash);
  return identical ? 0 : 1;
}
