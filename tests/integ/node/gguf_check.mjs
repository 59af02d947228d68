// gguf_check.mjs — independent structural check of a GGUF file exported by
// `hone export` with the @huggingface/gguf parser: GGUF v3, the llama.* keys,
// tokenizer.ggml.* keys ("llama" or byte-level "gpt2" tokenizers), tensor
// names, shapes and types that llama.cpp's Llama architecture expects. Usage: node gguf_check.mjs FILE.gguf f32|f16|bf16|q8_0
// Prints "ok: ..." and exits 0, or lists every problem and exits 1.
import { gguf } from "@huggingface/gguf";

const [file, dtype = "f32"] = process.argv.slice(2);
if (!file) {
  console.error("usage: node gguf_check.mjs FILE.gguf [f32|f16|bf16|q8_0]");
  process.exit(2);
}
const T = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 };
const FTYPE = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };
const V = { UINT32: 4, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 };
const problems = [];
const fail = (msg) => problems.push(msg);

const { metadata: md, typedMetadata: tm, tensorInfos } = await gguf(file, {
  allowLocalFile: true,
  typedMetadata: true,
});

function key(name, type, subType) {
  const e = tm[name];
  if (!e) return fail(`missing key ${name}`), undefined;
  if (e.type !== type) fail(`${name}: type ${e.type}, expected ${type}`);
  if (subType !== undefined && e.subType !== subType)
    fail(`${name}: element type ${e.subType}, expected ${subType}`);
  return e.value;
}

if (Number(md.version) !== 3) fail(`GGUF version ${md.version}, expected 3`);
if (key("general.architecture", V.STRING) !== "llama") fail("general.architecture is not llama");
const ft = key("general.file_type", V.UINT32);
if (ft !== FTYPE[dtype]) fail(`general.file_type ${ft}, expected ${FTYPE[dtype]} for ${dtype}`);

const u = (k) => Number(key(`llama.${k}`, V.UINT32));
const dim = u("embedding_length"), nl = u("block_count"), ff = u("feed_forward_length");
const nh = u("attention.head_count"), nkv = u("attention.head_count_kv");
const ctx = u("context_length"), vocab = u("vocab_size"), rot = u("rope.dimension_count");
key("llama.attention.layer_norm_rms_epsilon", V.FLOAT32);
key("llama.rope.freq_base", V.FLOAT32);
const hd = tm["llama.attention.key_length"] ? u("attention.key_length") : dim / nh;
if (tm["llama.attention.key_length"] && !tm["llama.attention.value_length"])
  fail("attention.key_length without attention.value_length");
if (rot !== hd) fail(`rope.dimension_count ${rot} != head_dim ${hd}`);
if (!(ctx > 0)) fail("context_length not positive");

// "llama": SentencePiece BPE (scores); "gpt2": byte-level BPE (pre + merges).
const tmodel = key("tokenizer.ggml.model", V.STRING);
if (tmodel !== "llama" && tmodel !== "gpt2") fail(`tokenizer.ggml.model ${tmodel}`);
const toks = key("tokenizer.ggml.tokens", V.ARRAY, V.STRING) ?? [];
const types = key("tokenizer.ggml.token_type", V.ARRAY, 5 /* INT32 */) ?? [];
if (toks.length !== vocab) fail(`${toks.length} tokens, llama.vocab_size ${vocab}`);
if (types.length !== toks.length) fail("tokens/token_type lengths differ");
if (tmodel === "llama") {
  const scores = key("tokenizer.ggml.scores", V.ARRAY, V.FLOAT32) ?? [];
  if (scores.length !== toks.length) fail("tokens/scores lengths differ");
} else {
  const pre = key("tokenizer.ggml.pre", V.STRING);
  if (!["gpt-2", "qwen2", "llama-bpe", "smollm"].includes(pre)) fail(`tokenizer.ggml.pre ${pre}`);
  const merges = key("tokenizer.ggml.merges", V.ARRAY, V.STRING) ?? [];
  if (!merges.length || merges.some((m) => m.split(" ").length !== 2))
    fail("tokenizer.ggml.merges: empty or not all \"left right\"");
}
const ids = tmodel === "llama" ? ["bos_token_id", "eos_token_id", "unknown_token_id"]
  : ["eos_token_id"].concat(["bos_token_id", "eot_token_id", "padding_token_id"]
      .filter((k) => tm[`tokenizer.ggml.${k}`]));
for (const k of ids) {
  const id = Number(key(`tokenizer.ggml.${k}`, V.UINT32));
  if (!(id >= 0 && id < toks.length)) fail(`tokenizer.ggml.${k} ${id} out of range`);
}
key("tokenizer.ggml.add_bos_token", V.BOOL);
if (!tm["tokenizer.chat_template"] && !tm["hone.chat_template"])
  fail("neither tokenizer.chat_template nor hone.chat_template");

// Expected tensors: name -> [ne0, ne1] (ne1 undefined for vectors).
const want = new Map([["token_embd.weight", [dim, vocab]], ["output_norm.weight", [dim]]]);
for (let l = 0; l < nl; l++) {
  const b = `blk.${l}.`;
  want.set(b + "attn_norm.weight", [dim]);
  want.set(b + "attn_q.weight", [dim, nh * hd]);
  want.set(b + "attn_k.weight", [dim, nkv * hd]);
  want.set(b + "attn_v.weight", [dim, nkv * hd]);
  want.set(b + "attn_output.weight", [nh * hd, dim]);
  want.set(b + "ffn_norm.weight", [dim]);
  want.set(b + "ffn_gate.weight", [dim, ff]);
  want.set(b + "ffn_up.weight", [dim, ff]);
  want.set(b + "ffn_down.weight", [ff, dim]);
}
if (tensorInfos.some((t) => t.name === "output.weight")) want.set("output.weight", [dim, vocab]);

function wantType(shape) {
  if (shape.length === 1) return T.F32;
  if (dtype === "q8_0") return shape[0] % 32 ? T.F16 : T.Q8_0;
  return { f32: T.F32, f16: T.F16, bf16: T.BF16 }[dtype];
}

const seen = new Set();
for (const t of tensorInfos) {
  const shape = want.get(t.name);
  if (!shape) { fail(`unexpected tensor ${t.name}`); continue; }
  seen.add(t.name);
  const got = t.shape.map(Number);
  if (got.length !== shape.length || got.some((v, i) => v !== shape[i]))
    fail(`${t.name}: shape [${got}], expected [${shape}]`);
  if (t.dtype !== wantType(shape)) fail(`${t.name}: type ${t.dtype}, expected ${wantType(shape)}`);
}
for (const n of want.keys()) if (!seen.has(n)) fail(`missing tensor ${n}`);

if (problems.length) {
  for (const p of problems) console.error(`gguf_check: ${file}: ${p}`);
  process.exit(1);
}
console.log(`ok: ${file}: GGUF v3 llama, ${tensorInfos.length} tensors, ${Object.keys(tm).length} keys, ${dtype}`);
