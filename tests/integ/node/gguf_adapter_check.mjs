// gguf_adapter_check.mjs — independent structural check of a GGUF LoRA adapter
// written by `hone export --format gguf-adapter`, with the @huggingface/gguf
// parser, against what llama.cpp's llama_adapter_lora_init requires:
// general.type "adapter", adapter.type "lora", adapter.lora.alpha (f32),
// general.architecture, and for each base tensor NAME a pair NAME.lora_a
// [in, r] / NAME.lora_b [r, out] of one rank, nothing else.
// Usage: node gguf_adapter_check.mjs ADAPTER.gguf BASE.gguf
// Prints "ok: ..." and exits 0, or lists every problem and exits 1.
import { gguf } from "@huggingface/gguf";

const [file, baseFile] = process.argv.slice(2);
if (!file || !baseFile) {
  console.error("usage: node gguf_adapter_check.mjs ADAPTER.gguf BASE.gguf");
  process.exit(2);
}
const V = { FLOAT32: 6, STRING: 8 };
const problems = [];
const fail = (msg) => problems.push(msg);

const opts = { allowLocalFile: true, typedMetadata: true };
const ad = await gguf(file, opts);
const base = await gguf(baseFile, opts);

function key(name, type) {
  const e = ad.typedMetadata[name];
  if (!e) return fail(`missing key ${name}`), undefined;
  if (e.type !== type) fail(`${name}: type ${e.type}, expected ${type}`);
  return e.value;
}
if (Number(ad.metadata.version) !== 3) fail(`GGUF version ${ad.metadata.version}, expected 3`);
if (key("general.type", V.STRING) !== "adapter") fail("general.type is not adapter");
if (key("adapter.type", V.STRING) !== "lora") fail("adapter.type is not lora");
const alpha = key("adapter.lora.alpha", V.FLOAT32);
if (!(alpha > 0)) fail(`adapter.lora.alpha ${alpha} not positive`);
if (key("general.architecture", V.STRING) !== base.metadata["general.architecture"])
  fail("general.architecture differs from the base model's");

const baseShape = new Map(base.tensorInfos.map((t) => [t.name, t.shape.map(Number)]));
const pairs = new Map();
for (const t of ad.tensorInfos) {
  const m = /^(.*)\.lora_([ab])$/.exec(t.name);
  if (!m) { fail(`tensor ${t.name} has no .lora_a/.lora_b suffix`); continue; }
  const p = pairs.get(m[1]) ?? {};
  p[m[2]] = t.shape.map(Number);
  pairs.set(m[1], p);
}
let rank;
for (const [name, p] of pairs) {
  const w = baseShape.get(name);
  if (!w) { fail(`${name}: not a tensor of the base model`); continue; }
  if (!p.a || !p.b) { fail(`${name}: lora_a or lora_b missing`); continue; }
  if (p.a[0] !== w[0] || p.b[1] !== w[1]) fail(`${name}: a [${p.a}] b [${p.b}] vs base [${w}]`);
  if (p.a[1] !== p.b[0]) fail(`${name}: lora_a [${p.a}] is not transposed against lora_b [${p.b}]`);
  rank ??= p.a[1];
  if (p.a[1] !== rank) fail(`${name}: rank ${p.a[1]}, others ${rank}`);
}
if (!pairs.size) fail("no LoRA tensors");

if (problems.length) {
  for (const p of problems) console.error(`gguf_adapter_check: ${file}: ${p}`);
  process.exit(1);
}
console.log(`ok: ${file}: GGUF LoRA adapter, ${pairs.size} pairs, rank ${rank}, alpha ${alpha}`);
