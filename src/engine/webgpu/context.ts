/**
 * What the WebGPU engine needs from a device: the device itself, whether dot4I8Packed is available,
 * and a pipeline cache. Built from the lead's GpuSession (the normal path) or from a bare GPUDevice
 * handed in through TrainOptions.device.
 */
import type { GpuSession } from '../../gpu/device.ts';

export interface GpuContext {
  device: GPUDevice;
  /** The adapter has the packed_4x8_integer_dot_product WGSL language feature. */
  packedDot: boolean;
  /**
   * A software adapter (SwiftShader, llvmpipe): the trainer then records barrier-free kernels,
   * since each workgroup barrier costs a fiber switch there (the same bits either way).
   */
  software: boolean;
  pipeline(
    code: string,
    entryPoint?: string,
    constants?: Record<string, number>,
  ): Promise<GPUComputePipeline>;
}

export async function contextFromSession(session: GpuSession): Promise<GpuContext> {
  const device = await session.device();
  const packedDot = await session.hasPackedDot();
  return {
    device,
    packedDot,
    software: (await session.report()).isSoftware,
    pipeline: (code, entry, constants) => session.pipeline(code, entry, constants),
  };
}

const deviceContexts = new WeakMap<GPUDevice, GpuContext>();

/**
 * For a device we did not acquire: language features come from navigator.gpu where there is one.
 * One context (and so one pipeline cache) per device, so repeated tasks do not recompile.
 */
export function contextFromDevice(device: GPUDevice, packedDot = browserHasPackedDot()): GpuContext {
  let ctx = deviceContexts.get(device);
  if (!ctx || ctx.packedDot !== packedDot) {
    ctx = newDeviceContext(device, packedDot);
    deviceContexts.set(device, ctx);
  }
  return ctx;
}

/** Whether a device's adapter is a software rasterizer, from GPUDevice.adapterInfo where present. */
function isSoftwareDevice(device: GPUDevice): boolean {
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  if (!info) return false;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return /swiftshader|llvmpipe|lavapipe/.test(text);
}

function newDeviceContext(device: GPUDevice, packedDot: boolean): GpuContext {
  const cache = new Map<string, Promise<GPUComputePipeline>>();
  return {
    device,
    packedDot,
    software: isSoftwareDevice(device),
    pipeline(code, entryPoint = 'main', constants) {
      const key = `${entryPoint}\u0000${JSON.stringify(constants ?? {})}\u0000${code}`;
      let pipeline = cache.get(key);
      if (!pipeline) {
        const module = device.createShaderModule({ code });
        pipeline = device.createComputePipelineAsync({
          layout: 'auto',
          compute: { module, entryPoint, constants },
        });
        cache.set(key, pipeline);
        pipeline.catch(() => cache.delete(key));
      }
      return pipeline;
    },
  };
}

function browserHasPackedDot(): boolean {
  const gpu = (globalThis as { navigator?: { gpu?: { wgslLanguageFeatures?: ReadonlySet<string> } } })
    .navigator?.gpu;
  return gpu?.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') ?? false;
}
