// Helpers shared by the benchmark scripts (bench/vs_ort, bench/engine_load):
// ONNX Runtime's install into bench/.cache, running a tool that prints JSON,
// model inputs from the zoo, the machine's description, and generated
// sections of docs/benchmarks.md.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync, execSync } = require('child_process');
const tf = require('./tensor_files');

const REPO = path.resolve(__dirname, '..', '..');
const CACHE = path.join(__dirname, '..', '.cache');
const ORT_VERSION = '1.30.0';

function ensureOrt() {
  const pkg = path.join(CACHE, 'node_modules', 'onnxruntime-node', 'package.json');
  if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).version === ORT_VERSION) return;
  process.stderr.write(`installing onnxruntime-node@${ORT_VERSION} into ${CACHE} ...\n`);
  fs.mkdirSync(CACHE, { recursive: true });
  const r = spawnSync('npm', ['install', '--prefix', CACHE, '--ignore-scripts', '--no-audit', '--no-fund',
    '--no-save', `onnxruntime-node@${ORT_VERSION}`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm install of onnxruntime-node failed');
}

// Runs a command that prints one JSON object; {error} on failure.
function runJson(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const msg = (r.stderr || r.error || `exit ${r.status}`).toString().trim().split('\n').slice(-3).join(' | ');
    return { error: `${path.basename(cmd)}: ${msg}` };
  }
  try {
    return JSON.parse(r.stdout);
  } catch (e) {
    return { error: `bad JSON from ${path.basename(cmd)}: ${e.message}` };
  }
}

// The inputs of one model at one batch: [{name, file, dims}], from the zoo's
// test data (batch 2) or random, written as .npy into `tmp`.
// The inputs of one model at `batch`: the stored test inputs where their
// leading dim already is `batch`, or where the input has no batch to change
// (a scalar such as silero VAD's sample rate, or a tensor whose leading dim
// differs from the first input's, e.g. a recurrent state [layers, batch,
// hidden], kept as stored). Otherwise float inputs are seeded random values
// and integer inputs the stored rows repeated along the new batch (token ids
// and indices stay valid).
function prepareInputs(modelDir, batch, tmp) {
  const dataDir = path.join(modelDir, 'test_data_set_0');
  const files = fs.readdirSync(dataDir).filter((f) => /^input_\d+\.pb$/.test(f)).sort(
    (x, y) => Number(x.match(/\d+/)[0]) - Number(y.match(/\d+/)[0]));
  const tensors = files.map((f) => tf.readTensorPb(path.join(dataDir, f)));
  const storedBatch = tensors.length && tensors[0].dims.length ? tensors[0].dims[0] : -1;
  return files.map((f, k) => {
    const t = tensors[k];
    if (!t.name) throw new Error(`${f} has no tensor name`);
    if (t.dims[0] === batch || t.dims.length === 0 || t.dims[0] !== storedBatch) {
      return { name: t.name, file: path.join(dataDir, f), dims: t.dims };
    }
    const dims = [batch, ...t.dims.slice(1)];
    const count = dims.reduce((x, y) => x * y, 1);
    const Ctor = tf.BY_TYPE_NAME[t.type][1];
    const data = new Ctor(count);
    let s = 0x9e3779b9 + k;  // mulberry32: a fixed, seeded sequence
    const rand = () => {
      s = (s + 0x6d2b79f5) | 0;
      let x = Math.imul(s ^ (s >>> 15), 1 | s);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
    const stored = t.data && t.data.length === t.dims.reduce((x, y) => x * y, 1) ? t.data : null;
    for (let i = 0; i < count; ++i) {
      if (t.type === 'float32' || t.type === 'float64') data[i] = rand() * 2 - 1;
      else if (stored && stored.length) data[i] = stored[i % stored.length];
      else if (Ctor === BigInt64Array || Ctor === BigUint64Array) data[i] = BigInt(Math.floor(rand() * 4));
      else data[i] = Math.floor(rand() * (t.type === 'bool' ? 2 : 4));  // small non-negative: valid indices
    }
    const file = path.join(tmp, `${t.name.replace(/[^\w.-]/g, '_')}.npy`);
    tf.writeNpy(file, { type: t.type, dims, data });
    return { name: t.name, file, dims };
  });
}

function machine() {
  const lscpu = (() => { try { return execSync('lscpu', { encoding: 'utf8' }); } catch { return ''; } })();
  const field = (n) => ((lscpu.match(new RegExp(`^${n}:\\s*(.*)$`, 'm')) || [])[1] || '?').trim();
  const flags = field('Flags').split(/\s+/);
  const wanted = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16'];
  const cores = Number(field('Core\\(s\\) per socket')) * Number(field('Socket\\(s\\)'));
  const git = (c) => { try { return execSync(`git -C "${REPO}" ${c}`, { encoding: 'utf8' }).trim(); } catch { return '?'; } };
  const dirty = git('status --porcelain --untracked-files=no') ? ' (with uncommitted changes)' : '';
  return {
    cpu: `${field('Model name')} (family ${field('CPU family')}, model ${field('Model')})`, cores, cpus: field('CPU\\(s\\)'),
    present: wanted.filter((f) => flags.includes(f)).join(' ') || 'none',
    absent: wanted.filter((f) => !flags.includes(f)).join(' ') || 'none',
    memGiB: (os.totalmem() / 2 ** 30).toFixed(0), commit: git('rev-parse --short HEAD') + dirty,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    node: process.version,
  };
}

// Replaces the lines between `begin` and `end` in docPath (appends them,
// markers included, when absent).
function writeDoc(docPath, begin, end, section) {
  let text = fs.existsSync(docPath) ? fs.readFileSync(docPath, 'utf8') : '# Benchmarks\n\n';
  const block = `${begin}\n${section.join('\n')}\n${end}`;
  const b = text.indexOf(begin);
  const e = text.indexOf(end);
  text = b >= 0 && e > b ? text.slice(0, b) + block + text.slice(e + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(docPath, text);
}

const median = (v) => {
  const s = [...v].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

module.exports = { REPO, CACHE, ORT_VERSION, ensureOrt, runJson, prepareInputs, machine, writeDoc, median };
