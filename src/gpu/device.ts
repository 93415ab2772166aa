/**
 * WebGPU device acquisition shared by the browser Worker and Node (browser-safe: no node: imports).
 *
 * Everything that runs kernels gets its device from a `GpuSession`: it reports what the adapter is
 * (for the UI and for result provenance), requests the limits our kernels need, caches pipelines
 * (created asynchronously, so compiling never blocks a frame), and replaces the device when it is lost.
 */

export interface GpuReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software rasterizers (SwiftShader), which are correct but slow. */
  isSoftware: boolean;
  features: string[];
  wgslLanguageFeatures: string[];
  limits: Record<string, number>;
}

/** The limits our kernels care about, reported and requested up to the adapter's maximum. */
const REPORTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

export function describeAdapter(adapter: GPUAdapter, wgsl: Iterable<string>): GpuReport {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const name of REPORTED_LIMITS) limits[name] = Number(adapter.limits[name]);
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware: text.includes('swiftshader') || text.includes('llvmpipe') || text.includes('lavapipe'),
    features: [...adapter.features].map(String).sort(),
    wgslLanguageFeatures: [...wgsl].map(String).sort(),
    limits,
  };
}

export function adapterLabel(report: GpuReport): string {
  const parts = [report.vendor, report.architecture, report.description || report.device].filter(Boolean);
  return parts.join(' / ') || 'unknown adapter';
}

export interface GpuSessionOptions {
  /** Called when the device is lost; the session acquires a new one on the next `device()` call. */
  onDeviceLost?: (reason: string) => void;
}

/**
 * One adapter/device pair plus a pipeline cache, re-acquired transparently after device loss.
 * `gpu` is `navigator.gpu` in a browser or Dawn's GPU object in Node.
 */
export class GpuSession {
  private current?: Promise<{ adapter: GPUAdapter; device: GPUDevice; report: GpuReport }>;
  private pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private generation = 0;

  constructor(
    private readonly gpu: GPU,
    private readonly options: GpuSessionOptions = {},
  ) {}

  /** Acquires (or re-acquires after loss) the device. Throws GpuUnavailableError with a reason. */
  async acquire() {
    if (!this.current) {
      this.current = this.open();
      this.current.catch(() => {
        this.current = undefined;
      });
    }
    return this.current;
  }

  async device(): Promise<GPUDevice> {
    return (await this.acquire()).device;
  }

  async report(): Promise<GpuReport> {
    return (await this.acquire()).report;
  }

  /** True when WGSL's dot4I8Packed is available (the `packed_4x8_integer_dot_product` language feature). */
  async hasPackedDot(): Promise<boolean> {
    return (await this.report()).wgslLanguageFeatures.includes('packed_4x8_integer_dot_product');
  }

  /** Compiles a compute pipeline once per (code, entry point, constants), asynchronously. */
  async pipeline(
    code: string,
    entryPoint = 'main',
    constants?: Record<string, number>,
  ): Promise<GPUComputePipeline> {
    const device = await this.device();
    const key = `${this.generation}\u0000${entryPoint}\u0000${JSON.stringify(constants ?? {})}\u0000${code}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = compilePipeline(device, code, entryPoint, constants);
      this.pipelines.set(key, pipeline);
      pipeline.catch(() => this.pipelines.delete(key));
    }
    return pipeline;
  }

  destroy(): void {
    const current = this.current;
    this.current = undefined;
    this.generation++;
    this.pipelines.clear();
    current?.then(({ device }) => device.destroy()).catch(() => {});
  }

  private async open() {
    const adapter = await this.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new GpuUnavailableError('WebGPU is present but no adapter was found');
    const wgsl = (this.gpu as GPU & { wgslLanguageFeatures?: Iterable<string> }).wgslLanguageFeatures ?? [];
    const report = describeAdapter(adapter, wgsl);
    const requiredLimits: Record<string, number> = {};
    for (const name of REPORTED_LIMITS) requiredLimits[name] = report.limits[name];
    const device = await adapter.requestDevice({ requiredLimits, label: 'cambrian' });
    const generation = ++this.generation;
    device.lost.then((info) => {
      // Our own destroy() bumps the generation first; any other loss of the current device (driver
      // reset, GPU process crash, someone else calling destroy()) means: forget it and re-acquire.
      if (generation !== this.generation) return;
      this.current = undefined;
      this.pipelines.clear();
      this.options.onDeviceLost?.(info.message || String(info.reason));
    });
    return { adapter, device, report };
  }
}

async function compilePipeline(
  device: GPUDevice,
  code: string,
  entryPoint: string,
  constants?: Record<string, number>,
): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0) {
    const text = errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
    throw new Error(`WGSL compilation failed (${entryPoint}):\n${text}`);
  }
  return device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint, constants } });
}
