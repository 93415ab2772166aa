/** Small helpers for moving integer tensors in and out of GPU buffers. */

export const STORAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST (GPUBufferUsage, without the global)
const UNIFORM_COPY_DST = 0x40 | 0x8;
const MAP_READ_COPY_DST = 0x1 | 0x8;

/** Packs int8 values four to a u32 word (element e is byte e & 3 of word e >> 2), zero-padded. */
export function packInt8(values: Int8Array): Uint32Array {
  const words = new Uint32Array(Math.max(1, Math.ceil(values.length / 4)));
  new Int8Array(words.buffer).set(values);
  return words;
}

/** Storage buffer of at least 4 bytes (WebGPU rejects empty bindings), optionally filled. */
export function storageBuffer(device: GPUDevice, byteLength: number, data?: ArrayBufferView, label?: string) {
  const size = Math.max(4, Math.ceil(byteLength / 4) * 4);
  const buffer = device.createBuffer({ size, usage: STORAGE, mappedAtCreation: data !== undefined, label });
  if (data) {
    new Uint8Array(buffer.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    buffer.unmap();
  }
  return buffer;
}

/** A uniform buffer holding u32 values (padded to 16 bytes as WGSL uniform structs require). */
export function uniformBuffer(device: GPUDevice, values: ArrayLike<number>, label?: string): GPUBuffer {
  const size = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
  const buffer = device.createBuffer({ size, usage: UNIFORM_COPY_DST, mappedAtCreation: true, label });
  const view = new Uint32Array(buffer.getMappedRange());
  for (let i = 0; i < values.length; i++) view[i] = values[i] >>> 0;
  buffer.unmap();
  return buffer;
}

/** Copies `byteLength` bytes of `source` (from `offset`) back to the CPU. */
export async function readBack(
  device: GPUDevice,
  source: GPUBuffer,
  byteLength: number,
  offset = 0,
): Promise<ArrayBuffer> {
  const size = Math.max(4, Math.ceil(byteLength / 4) * 4);
  const staging = device.createBuffer({ size, usage: MAP_READ_COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(source, offset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(0x1);
  const copy = staging.getMappedRange().slice(0, byteLength);
  staging.unmap();
  staging.destroy();
  return copy;
}

export function bindGroup(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  buffers: GPUBuffer[],
): GPUBindGroup {
  return device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}
