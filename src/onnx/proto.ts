/**
 * ONNX protobuf messages through the `onnx-proto` package: protobufjs's static code generated from
 * onnx/onnx.proto (ONNX 1.10.2: IR version ≤ 8, opsets ≤ 15; this export writes IR 7, opset 13).
 * protobufjs does the wire format; this file only builds the message objects the exporters need.
 * The package is CommonJS: its namespace is the default import's `onnx` (Node's ESM loader and
 * Vite alike). Browser-safe: no node: imports, output is a Uint8Array.
 */
import onnxProto, { type onnx as proto } from 'onnx-proto';

const { onnx } = onnxProto;

export { onnx };

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: onnx.TensorProto.DataType.FLOAT, INT64: onnx.TensorProto.DataType.INT64 };

export type Attribute =
  | { name: string; float: number }
  | { name: string; int: number }
  | { name: string; ints: number[] };

function attribute(a: Attribute): proto.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if ('float' in a) return { name: a.name, f: a.float, type: AttributeType.FLOAT };
  if ('ints' in a) return { name: a.name, ints: a.ints, type: AttributeType.INTS };
  return { name: a.name, i: a.int, type: AttributeType.INT };
}

export interface NodeDef {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes?: Attribute[];
}

/** A float32 tensor initializer with raw little-endian data. */
export function tensor(name: string, dims: number[], data: Float32Array): proto.ITensorProto {
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return { name, dims, dataType: DataType.FLOAT, rawData: raw };
}

/** A float tensor's ValueInfoProto; a string dim is symbolic (dim_param), a number fixed (dim_value). */
export function floatValueInfo(name: string, dims: (number | string)[], doc = ''): proto.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return {
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim } } },
    ...(doc ? { docString: doc } : {}),
  };
}

/** A float32 tensor, or an int64 one (shapes, e.g. Reshape's second input). */
export type Initializer =
  | { name: string; dims: number[]; data: Float32Array }
  | { name: string; dims: number[]; int64: number[] };

function initializer(t: Initializer): proto.ITensorProto {
  if ('data' in t) return tensor(t.name, t.dims, t.data);
  return { name: t.name, dims: t.dims, dataType: DataType.INT64, int64Data: t.int64 };
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: Initializer[];
  inputs: proto.IValueInfoProto[];
  outputs: proto.IValueInfoProto[];
  doc?: string;
}

export interface ModelDef {
  irVersion: number;
  opset: number;
  producer: string;
  producerVersion: string;
  graph: GraphDef;
  doc?: string;
  metadata?: Record<string, string>;
}

/** The ModelProto bytes. */
export function model(def: ModelDef): Uint8Array {
  const g = def.graph;
  const message = onnx.ModelProto.create({
    irVersion: def.irVersion,
    producerName: def.producer,
    producerVersion: def.producerVersion,
    ...(def.doc ? { docString: def.doc } : {}),
    opsetImport: [{ domain: '', version: def.opset }],
    metadataProps: Object.entries(def.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        input: n.inputs,
        output: n.outputs,
        name: n.name,
        opType: n.op,
        attribute: (n.attributes ?? []).map(attribute),
      })),
      initializer: g.initializers.map(initializer),
      input: g.inputs,
      output: g.outputs,
      ...(g.doc ? { docString: g.doc } : {}),
    },
  });
  return onnx.ModelProto.encode(message).finish();
}

/** Decodes ModelProto bytes (tests and tools read exported models back with it). */
export function decodeModel(bytes: Uint8Array): proto.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
