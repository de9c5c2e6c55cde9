// Tensor files for the benchmark scripts: numpy .npy (read and write) and
// serialized ONNX TensorProto .pb (read), as kiln reads them.
//
// TensorProto fields used (onnx.proto): 1 dims (int64, packed or not),
// 2 data_type, 4 float_data, 5 int32_data, 7 int64_data, 8 name, 9 raw_data,
// 10 double_data, 11 uint64_data. Strings and external data are not handled.
'use strict';
const fs = require('fs');

// ONNX data_type -> [onnxruntime-node type name, typed-array constructor, npy descr]
const TYPES = {
  1: ['float32', Float32Array, '<f4'],
  2: ['uint8', Uint8Array, '|u1'],
  3: ['int8', Int8Array, '|i1'],
  4: ['uint16', Uint16Array, '<u2'],
  5: ['int16', Int16Array, '<i2'],
  6: ['int32', Int32Array, '<i4'],
  7: ['int64', BigInt64Array, '<i8'],
  9: ['bool', Uint8Array, '|b1'],
  10: ['float16', Uint16Array, '<f2'],
  11: ['float64', Float64Array, '<f8'],
  12: ['uint32', Uint32Array, '<u4'],
  13: ['uint64', BigUint64Array, '<u8'],
};
const BY_TYPE_NAME = Object.fromEntries(Object.values(TYPES).map((t) => [t[0], t]));
const BY_DESCR = Object.fromEntries(Object.values(TYPES).map((t) => [t[2], t]));

// A tensor here: {name, type ('float32', ...), dims: [numbers], data: TypedArray}.

function readVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [result, pos];
    shift += 7n;
  }
}

function copyBytes(buf, start, end, Ctor) {
  const bytes = buf.subarray(start, end);
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  return new Ctor(aligned.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
}

function parseTensorProto(buf, what) {
  let pos = 0;
  const dims = [];
  let dataType = 0;
  let name = '';
  let raw = null;
  const typed = { 4: [], 5: [], 7: [], 10: [], 11: [] };
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      if (field === 1) dims.push(Number(BigInt.asIntN(64, v)));
      else if (field === 2) dataType = Number(v);
      else if (field in typed) typed[field].push(v);
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const start = pos;
      const end = pos + Number(len);
      if (end > buf.length) throw new Error(`${what}: truncated field ${field}`);
      pos = end;
      if (field === 8) name = buf.subarray(start, end).toString('utf8');
      else if (field === 9) raw = buf.subarray(start, end);
      else if (field === 1) {
        for (let p = start; p < end; ) {
          let v;
          [v, p] = readVarint(buf, p);
          dims.push(Number(BigInt.asIntN(64, v)));
        }
      } else if (field === 4) typed[4].push(...copyBytes(buf, start, end, Float32Array));
      else if (field === 10) typed[10].push(...copyBytes(buf, start, end, Float64Array));
      else if (field === 5 || field === 7 || field === 11) {
        for (let p = start; p < end; ) {
          let v;
          [v, p] = readVarint(buf, p);
          typed[field].push(v);
        }
      } else if (field === 13 || field === 6) throw new Error(`${what}: external data and strings are not supported`);
    } else if (wire === 5) pos += 4;
    else if (wire === 1) {
      if (field === 10) typed[10].push(buf.readDoubleLE(pos));
      pos += 8;
    } else throw new Error(`${what}: unexpected wire type ${wire}`);
  }
  const t = TYPES[dataType];
  if (!t) throw new Error(`${what}: unsupported data_type ${dataType}`);
  const [type, Ctor] = t;
  const count = dims.reduce((a, b) => a * b, 1);
  let data;
  if (raw) data = copyBytes(raw, 0, raw.length, Ctor);
  else if (dataType === 1) data = Float32Array.from(typed[4]);
  else if (dataType === 11) data = Float64Array.from(typed[10]);
  else if (dataType === 7) data = BigInt64Array.from(typed[7].map((v) => BigInt.asIntN(64, v)));
  else if (dataType === 13) data = BigUint64Array.from(typed[11]);
  else if (dataType === 12) data = Uint32Array.from(typed[11].map(Number));
  else data = Ctor.from(typed[5].map((v) => Number(BigInt.asIntN(32, v))));
  if (data.length !== count) throw new Error(`${what}: ${data.length} values for dims [${dims}]`);
  return { name, type, dims, data };
}

function readTensorPb(path) {
  return parseTensorProto(fs.readFileSync(path), path);
}

function readNpy(path, name = '') {
  const buf = fs.readFileSync(path);
  if (buf.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = buf.subarray(headerStart, headerStart + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1].replace('=', '<');
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path}: Fortran order is not supported`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const t = BY_DESCR[descr];
  if (!t) throw new Error(`${path}: unsupported dtype ${descr}`);
  const data = copyBytes(buf, headerStart + headerLen, buf.length, t[1]);
  return { name, type: t[0], dims: shape, data };
}

function writeNpy(path, tensor) {
  const descr = BY_TYPE_NAME[tensor.type][2];
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  fs.writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(d.buffer, d.byteOffset, d.byteLength)]));
}

// Reads .npy, else TensorProto; `name` names an .npy tensor (which has none).
function readTensorFile(path, name = '') {
  return path.endsWith('.npy') ? readNpy(path, name) : readTensorPb(path);
}

// Relative L2 error of `got` against `want` (as doubles); Infinity on a shape mismatch.
function relL2(got, want) {
  if (got.data.length !== want.data.length || got.dims.join('x') !== want.dims.join('x')) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.data.length; ++i) {
    const g = Number(got.data[i]);
    const w = Number(want.data[i]);
    num += (g - w) * (g - w);
    den += w * w;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

// Same file name kiln writes for an output (tools/kiln/common.cpp write_outputs).
function safeName(name) {
  return name.replace(/[/\\:]/g, '_');
}

module.exports = { TYPES, BY_TYPE_NAME, readTensorPb, readNpy, writeNpy, readTensorFile, relL2, safeName };
