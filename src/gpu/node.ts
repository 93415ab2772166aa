/**
 * WebGPU in Node through Dawn (the `webgpu` package).
 *
 * On a machine with a GPU, Dawn uses its Vulkan driver. On one without, Dawn finds no usable adapter;
 * we then point the Vulkan loader at the SwiftShader ICD that ships inside Debian's chromium package
 * and try again, so `cambrian selftest --backend webgpu` works on CI and laptops alike.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuSession, type GpuSessionOptions, GpuUnavailableError } from './device.ts';

const SWIFTSHADER_ICDS = [
  process.env.CAMBRIAN_SWIFTSHADER_ICD,
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib64/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
].filter((p): p is string => Boolean(p));

const VULKAN_LOADERS = [
  '/usr/lib/x86_64-linux-gnu/libvulkan.so.1',
  '/usr/lib/aarch64-linux-gnu/libvulkan.so.1',
  '/usr/lib64/libvulkan.so.1',
  '/usr/lib/libvulkan.so.1',
];

type Dawn = typeof import('webgpu');
let dawn: Promise<Dawn> | undefined;

async function loadDawn(): Promise<Dawn> {
  // Vulkan's window-system probing prints "XDG_RUNTIME_DIR is invalid" for every instance on a
  // headless machine; a private runtime dir keeps worker and CLI output readable.
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), `cambrian-runtime-${process.getuid?.() ?? 'user'}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  dawn ??= import('webgpu').then((mod) => {
    // Dawn's GPU* constants (GPUBufferUsage, ...) are globals in browsers; kernels expect them.
    Object.assign(globalThis, mod.globals);
    return mod;
  });
  return dawn;
}

/** Finds a GPU object with at least one adapter, falling back to SwiftShader. */
export async function nodeGpu(): Promise<{ gpu: GPU; softwareFallback: boolean }> {
  const { create } = await loadDawn();
  const gpu = create([]) as unknown as GPU;
  if (await gpu.requestAdapter()) return { gpu, softwareFallback: false };

  const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
  if (!icd) throw new GpuUnavailableError(missingMessage());
  process.env.VK_ICD_FILENAMES = icd;
  const fallback = create([]) as unknown as GPU;
  if (await fallback.requestAdapter()) return { gpu: fallback, softwareFallback: true };
  throw new GpuUnavailableError(missingMessage());
}

function missingMessage(): string {
  const missing: string[] = [];
  if (!VULKAN_LOADERS.some((p) => existsSync(p))) {
    missing.push('the Vulkan loader libvulkan.so.1 (Debian: apt-get install libvulkan1)');
  }
  if (!SWIFTSHADER_ICDS.some((p) => existsSync(p))) {
    missing.push(
      "a GPU driver or SwiftShader's Vulkan ICD (Debian: apt-get install chromium, which ships " +
        '/usr/lib/chromium/vk_swiftshader_icd.json; or set CAMBRIAN_SWIFTSHADER_ICD)',
    );
  }
  const what = missing.length > 0 ? missing.join(' and ') : 'a working Vulkan driver';
  return `no WebGPU adapter in Node: Dawn needs ${what}. Use --backend cpu to run on the CPU reference.`;
}

/** A GpuSession on Dawn in Node. */
export async function createNodeGpuSession(options?: GpuSessionOptions): Promise<GpuSession> {
  const { gpu } = await nodeGpu();
  return new GpuSession(gpu, options);
}
