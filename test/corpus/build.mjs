// Writes the corpus's input files into test/corpus/cases/<id>/ (committed; run again after changing a case):
//   node test/corpus/build.mjs
// `model/` in a case folder is laid over a copy of a fixture model (../shared/fixtures/tiny-llama); other files are
// the case's own (a dataset). Inputs too big to commit are made at test time (cases.json "generate").
// Every file here is small: safetensors cases are hand-built files of a few tensors, not copies of a checkpoint.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CASES = path.join(HERE, 'cases');
const FIXTURE = path.resolve(HERE, '../../../shared/fixtures/tiny-llama');
const baseConfig = JSON.parse(readFileSync(path.join(FIXTURE, 'config.json'), 'utf8'));
const baseTokenizerConfig = JSON.parse(readFileSync(path.join(FIXTURE, 'tokenizer_config.json'), 'utf8'));

rmSync(CASES, { recursive: true, force: true });
const put = (id, file, content) => {
  const full = path.join(CASES, id, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, content);
};
const json = (v) => JSON.stringify(v, null, 2) + '\n';

// ---- safetensors, built by hand -------------------------------------------------------------------------------
const u64 = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
/** A file: 8-byte length (the header's own, plus `lenDelta`), the header text padded to 8 bytes, then `data`. */
function safetensors(header, data, { lenDelta = 0, pad = true } = {}) {
  let text = typeof header === 'string' ? header : JSON.stringify(header);
  if (pad) text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const h = Buffer.from(text);
  return Buffer.concat([u64(h.length + lenDelta), h, data]);
}
const f32 = (...xs) => Buffer.from(new Float32Array(xs).buffer);
const two = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } };
const twoData = f32(1, 2, 3, 4);
const st = (id, bytes) => put(id, 'model/model.safetensors', bytes);

st('st-empty', Buffer.alloc(0));
st('st-five-bytes', Buffer.from([1, 2, 3, 4, 5]));
st('st-header-over-limit', Buffer.concat([u64(200_000_000), Buffer.from('{}')]));
st('st-header-past-end', Buffer.concat([u64(1000), Buffer.from('{"a":1}')]));
st('st-header-one-byte-short', safetensors({ __metadata__: { format: 'pt' }, ...two }, twoData, { lenDelta: -1 }));
st('st-header-one-byte-long', safetensors(two, twoData, { lenDelta: 1 }));
st('st-trailing-bytes', safetensors(two, Buffer.concat([twoData, Buffer.from([0, 0, 0, 0])])));
st('st-duplicate-name', safetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, twoData));
st('st-gap', safetensors({ a: two.a, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, twoData));
st('st-overlap', safetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, twoData));
st('st-data-not-from-zero', safetensors({ b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, twoData));
st('st-metadata-number', safetensors({ __metadata__: { format: 'pt', step: 5 }, ...two }, twoData));
st('st-metadata-array', safetensors({ __metadata__: ['pt'], ...two }, twoData));
st('st-metadata-nested', safetensors({ __metadata__: { format: [[['pt']]] }, ...two }, twoData));
st('st-not-utf8', Buffer.concat([u64(8), Buffer.from([0x7b, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d, 0x20])]));
st('st-header-array', safetensors('[1, 2, 3]', Buffer.alloc(0)));
st('st-header-null', safetensors('null', Buffer.alloc(0)));
st('st-header-leading-space', safetensors(' ' + JSON.stringify(two), twoData, { pad: true }));
st('st-header-invalid-json', safetensors('{"a": {"dtype": "F32",', Buffer.alloc(0)));
st('st-unknown-dtype', safetensors({ a: { dtype: 'F99', shape: [2], data_offsets: [0, 8] } }, f32(1, 2)));
st('st-negative-shape', safetensors({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32(1, 2)));
st('st-shape-bytes-disagree', safetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(1, 2)));
st('st-offsets-reversed', safetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, f32(1, 2)));
st('st-offsets-fractional', safetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 7.5] } }, f32(1, 2)));
st('st-tensor-past-end', safetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(1, 2)));
st('st-tensor-not-object', safetensors({ a: 5 }, Buffer.alloc(0)));
st('st-shape-overflow', safetensors({ a: { dtype: 'F32', shape: [1e15, 1e15], data_offsets: [0, 8] } }, f32(1, 2)));
st('st-no-dtype', safetensors({ a: { shape: [2], data_offsets: [0, 8] } }, f32(1, 2)));

// ---- shards and model.safetensors.index.json --------------------------------------------------------------------
const index = (id, text) => put(id, 'model/model.safetensors.index.json', text);
index('index-null', 'null\n');
index('index-array', '[]\n');
index('index-no-weight-map', json({ metadata: { total_size: 16 } }));
index('index-weight-map-string', json({ weight_map: 'model.safetensors' }));
index('index-weight-map-empty', json({ weight_map: {} }));
index('index-shard-not-string', json({ weight_map: { 'model.norm.weight': 5 } }));
index('index-shard-outside-folder', json({ weight_map: { 'model.norm.weight': '../model.safetensors' } }));
index('index-missing-shard', json({ weight_map: { 'model.norm.weight': 'model-00002-of-00002.safetensors' } }));
index('index-tensor-in-no-shard', json({ weight_map: { 'model.norm.weight': 'model.safetensors', 'ghost.weight': 'model.safetensors' } }));
index('index-invalid-json', '{"weight_map": {"model.norm.weight": "model.safetensors",}\n');
put('shards-without-index', 'model/model-00001-of-00002.safetensors', safetensors(two, twoData));
put('shards-without-index', 'model/model-00002-of-00002.safetensors', safetensors({ c: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(5)));
put('shards-duplicate-tensor', 'model/model-00001-of-00002.safetensors', safetensors(two, twoData));
put('shards-duplicate-tensor', 'model/model-00002-of-00002.safetensors', safetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(5)));
index('shards-duplicate-tensor', json({ weight_map: { b: 'model-00001-of-00002.safetensors', a: 'model-00002-of-00002.safetensors' } }));

// ---- config.json -------------------------------------------------------------------------------------------------
const config = (id, patch) => put(id, 'model/config.json', json({ ...baseConfig, ...patch }));
put('config-invalid-json', 'model/config.json', '{"model_type": "llama", "hidden_size": 64,,}\n');
put('config-null', 'model/config.json', 'null\n');
config('config-layers-1e8', { num_hidden_layers: 1e8 });
config('config-layers-1e15', { num_hidden_layers: 1e15 });
config('config-layers-1e6', { num_hidden_layers: 1e6 });
config('config-layers-string', { num_hidden_layers: '6' });
config('config-hidden-mismatch', { hidden_size: 128, head_dim: 32 });
config('config-vocab-huge', { vocab_size: 1e9 });
config('config-vocab-mismatch', { vocab_size: 1000 });
config('config-kv-heads-not-divisor', { num_key_value_heads: 3 });
config('config-model-type-gpt2', { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] });
config('config-rope-yarn', { rope_scaling: { rope_type: 'yarn', factor: 4 } });
config('config-hidden-act-gelu', { hidden_act: 'gelu' });
config('config-max-positions-zero', { max_position_embeddings: 0 });
config('config-eos-string', { eos_token_id: 'two' });
config('config-head-dim-odd', { head_dim: 15, num_attention_heads: 4 });
config('config-intermediate-mismatch', { intermediate_size: 200 });

// ---- tokenizer files ---------------------------------------------------------------------------------------------
const tokConfig = (id, patch) => put(id, 'model/tokenizer_config.json', json({ ...baseTokenizerConfig, ...patch }));
put('tokenizer-invalid-json', 'model/tokenizer.json', '{"version": "1.0", "model": {\n');
put('tokenizer-config-invalid-json', 'model/tokenizer_config.json', '{"bos_token": "<s>",\n');
put('tokenizer-config-null', 'model/tokenizer_config.json', 'null\n');
tokConfig('tokenizer-config-template-number', { chat_template: 42 });
tokConfig('tokenizer-config-bos-array', { bos_token: ['<s>'] });
tokConfig('tokenizer-config-added-tokens-list', { added_tokens_decoder: [] });
tokConfig('tokenizer-config-breaks-tokenizer', { additional_special_tokens: 7 });
put('tokenizer-unknown-model', 'model/tokenizer.json', json({ version: '1.0', model: { type: 'NoSuchModel', vocab: {} } }));
put('tokenizer-json-array', 'model/tokenizer.json', '[]\n');

// ---- datasets (run with `score <tiny-llama> --data`) ---------------------------------------------------------------
const data = (id, file, content) => put(id, file, content);
data('data-empty', 'train.jsonl', '');
data('data-binary', 'train.jsonl', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 1, 2, 3, 0]));
data('data-gzip', 'train.jsonl.gz', Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 0xab, 0xae, 5, 0, 0x43, 0xbf, 0xa6, 0xa3, 2, 0, 0, 0]));
data('data-zip', 'train.json', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0]));
const utf16 = (text, bom, be = false) => {
  const le = Buffer.from(text, 'utf16le');
  if (be) for (let i = 0; i < le.length; i += 2) [le[i], le[i + 1]] = [le[i + 1], le[i]];
  return Buffer.concat([bom ? Buffer.from(be ? [0xfe, 0xff] : [0xff, 0xfe]) : Buffer.alloc(0), le]);
};
// Decoded, these files have the columns question + reply (no format fits): the message shows they were read as text.
data('data-utf16le-bom', 'train.csv', utf16('question,reply\nWhat is 2+2?,4\nCapital of France?,Paris\n', true));
data('data-utf16be-bom', 'train.jsonl', utf16('{"question": "What is 2+2?", "reply": "4"}\n', true, true));
data('data-utf16le-no-bom', 'train.jsonl', utf16('{"question": "What is 2+2?", "reply": "4"}\n{"question": "Why?", "reply": "So."}\n', false));
data('data-csv-unclosed-quote', 'train.csv', 'text,label\ngood movie,1\n"bad movie,0\nfine film,1\nawful,0\n');
data('data-tsv-unclosed-quote', 'train.tsv', 'prompt\tcompletion\nHi\tHello\n"Bye\tSee you\nYes\tNo\n');
data('data-csv-header-only', 'train.csv', 'prompt,completion\n');
data('data-csv-ragged', 'train.csv', 'prompt,completion\nHi\nBye,See you,extra\n');
data('data-json-invalid', 'train.json', '[\n  {"prompt": "a", "completion": "b"},\n  {"prompt": "c" "completion": "d"}\n]\n');
data('data-json-scalar', 'train.json', '42\n');
data('data-json-no-rows', 'train.json', json({ name: 'my dataset', version: 2 }));
data('data-json-two-arrays', 'train.json', json({ train: [{ text: 'a' }], test: [{ text: 'b' }] }));
data('data-jsonl-not-json', 'train.jsonl', 'this is not json\n{"prompt": "a", "completion":\n');
data('data-jsonl-arrays', 'train.jsonl', '[1, 2, 3]\n["a"]\n');
data('data-no-format', 'train.jsonl', '{"foo": 1, "bar": 2}\n');
data('data-pretokenized-oov', 'train.jsonl', '{"input_ids": [1, 9999, 20]}\n{"input_ids": [1, 5, 70000]}\n');
data('data-pretokenized-negative', 'train.jsonl', '{"input_ids": [1, -5, 20]}\n');
data('data-pretokenized-not-int', 'train.jsonl', '{"input_ids": [1, 2.5, "x"]}\n');
data('data-pretokenized-mask-length', 'train.jsonl', '{"input_ids": [1, 2, 3], "loss_mask": [0, 1]}\n');
data('data-chat-no-assistant', 'train.jsonl', json({ messages: [{ role: 'user', content: 'Hi' }] }).replace(/\n\s*/g, '') + '\n');
data('data-chat-bad-role', 'train.jsonl', '{"messages": [{"role": "wizard", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n');
data('data-chat-template-fails', 'train.jsonl', '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n');
tokConfig('data-chat-template-fails', { chat_template: "{% for m in messages %}{{ raise_exception('this template refuses every conversation') }}{% endfor %}" });
data('data-parquet-garbage', 'train.parquet', Buffer.from('PAR1 this is not really parquet PAR1'));
data('data-parquet-truncated', 'train.parquet', Buffer.from([0x50, 0x41, 0x52, 0x31, 0x15, 0x04, 0x15, 0x10]));
data('data-mc-gold-out-of-range', 'train.jsonl', '{"query": "Q?", "choices": ["a", "b"], "gold": 5}\n');
data('data-classification-one-label', 'train.csv', 'sentence,label\ngood,positive\nfine,positive\n');
data('data-instruction-empty-output', 'train.jsonl', '{"instruction": "Say hi", "output": ""}\n');
data('data-multiple-choice-one-choice', 'train.jsonl', '{"question": "Q?", "choices": ["only"], "answer": 0}\n');

// ---- task data as the person means it: templates, rejection reasons, encodings (H4) ------------------------------
data('data-question-empty', 'train.csv', 'question,answer\n,Paris\n  ,Rome\n');
data('data-instruction-number-no-output', 'train.jsonl', '{"instruction": 123, "output": null}\n');
data('data-template-unknown-column', 'train.csv', 'question,answer\nWhat is 2+2?,4\n');
data('data-template-on-chat', 'train.jsonl', '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n');
data('data-utf32le-bom', 'train.jsonl', Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.from([...'{"text": "a"}\n'].flatMap((c) => [c.charCodeAt(0), 0, 0, 0]))]));
data('data-utf32le-no-bom', 'train.jsonl', Buffer.from([...'{"text": "a"}\n{"text": "b"}\n'].flatMap((c) => [c.charCodeAt(0), 0, 0, 0])));
data('data-safetensors', 'model.safetensors', Buffer.concat([Buffer.from([27, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"__metadata__":{"a":"b"}} '), Buffer.alloc(8)]));
const chat = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n';
data('data-chat-template-huge-range', 'train.jsonl', chat);
tokConfig('data-chat-template-huge-range', { chat_template: '{% for i in range(1000000000) %}x{% endfor %}{% for m in messages %}{{ m.content }}{% endfor %}' });
data('data-chat-template-nested-loops', 'train.jsonl', chat);
tokConfig('data-chat-template-nested-loops', { chat_template: '{% set r = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] %}{% for a in r %}{% for b in r %}{% for c in r %}{% for d in r %}{% for e in r %}{% for f in r %}x{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}' });
