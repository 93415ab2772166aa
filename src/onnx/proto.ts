/**
 * A minimal protobuf writer for the ONNX messages an MLP needs (onnx.proto3, IR version 7+).
 *
 * Hand-written rather than onnx-proto's protobufjs build: that package is CommonJS without named
 * ESM exports (its `onnx` namespace is undefined under Node's ESM loader), and the handful of
 * messages below are a few dozen lines. Browser-safe: no node: imports, output is a Uint8Array.
 * Field numbers are those of onnx/onnx.proto; only the fields used are modelled.
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/** Accumulates one message's fields; `finish()` concatenates them. */
export class Message {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): this {
    this.parts.push(bytes);
    this.size += bytes.length;
    return this;
  }

  private key(field: number, wire: number): this {
    return this.push(varint(field * 8 + wire));
  }

  /** int32/int64/enum/bool field (non-negative values only: all this writer needs). */
  int(field: number, value: number): this {
    return this.key(field, WIRE_VARINT).push(varint(value));
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.key(field, WIRE_FIXED32).push(b);
  }

  bytes(field: number, value: Uint8Array): this {
    return this.key(field, WIRE_LEN).push(varint(value.length)).push(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, value: Message): this {
    return this.bytes(field, value.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Base-128 varint of a non-negative safe integer. */
export function varint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new Error(`varint needs a non-negative safe integer, got ${value}`);
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return Uint8Array.from(out);
}

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;
/** AttributeProto.AttributeType values used here. */
const AttributeType = { FLOAT: 1, INT: 2 } as const;

/** TensorProto with raw little-endian data: dims=1, data_type=2, name=8, raw_data=9. */
export function tensor(name: string, dims: number[], data: Float32Array): Message {
  const m = new Message();
  for (const d of dims) m.int(1, d);
  m.int(2, DataType.FLOAT).string(8, name);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return m.bytes(9, raw);
}

export type Attribute = { name: string; float: number } | { name: string; int: number };

/** AttributeProto: name=1, f=2, i=3, type=20. */
function attribute(a: Attribute): Message {
  const m = new Message().string(1, a.name);
  if ('float' in a) return m.float(2, a.float).int(20, AttributeType.FLOAT);
  return m.int(3, a.int).int(20, AttributeType.INT);
}

export interface NodeDef {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes?: Attribute[];
}

/** NodeProto: input=1, output=2, name=3, op_type=4, attribute=5. */
export function node(n: NodeDef): Message {
  const m = new Message();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.op);
  for (const a of n.attributes ?? []) m.message(5, attribute(a));
  return m;
}

/**
 * ValueInfoProto (name=1, type=2, doc_string=3) of a float tensor; a string dim is symbolic
 * (TensorShapeProto.Dimension dim_param=2), a number fixed (dim_value=1).
 */
export function floatValueInfo(name: string, dims: (number | string)[], doc = ''): Message {
  const shape = new Message();
  for (const d of dims)
    shape.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
  const tensorType = new Message().int(1, DataType.FLOAT).message(2, shape);
  const m = new Message().string(1, name).message(2, new Message().message(1, tensorType));
  return doc ? m.string(3, doc) : m;
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: { name: string; dims: number[]; data: Float32Array }[];
  inputs: Message[];
  outputs: Message[];
  doc?: string;
}

/** GraphProto: node=1, name=2, initializer=5, doc_string=10, input=11, output=12. */
export function graph(g: GraphDef): Message {
  const m = new Message();
  for (const n of g.nodes) m.message(1, node(n));
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, tensor(t.name, t.dims, t.data));
  if (g.doc) m.string(10, g.doc);
  for (const i of g.inputs) m.message(11, i);
  for (const o of g.outputs) m.message(12, o);
  return m;
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

/**
 * ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7,
 * opset_import=8 (OperatorSetIdProto: domain=1, version=2), metadata_props=14 (key=1, value=2).
 */
export function model(def: ModelDef): Uint8Array {
  const m = new Message().int(1, def.irVersion).string(2, def.producer).string(3, def.producerVersion);
  if (def.doc) m.string(6, def.doc);
  m.message(7, graph(def.graph)).message(8, new Message().string(1, '').int(2, def.opset));
  for (const [key, value] of Object.entries(def.metadata ?? {})) {
    m.message(14, new Message().string(1, key).string(2, value));
  }
  return m.finish();
}
