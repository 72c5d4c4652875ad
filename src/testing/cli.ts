// Node-only helpers shared by the eval / generate tests (unit and gpu tiers): the CLI run in-process, and fixture
// data turned into the files a person would give the CLI.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CliIO } from '../cli/command';
import { main } from '../cli/main';
import { writePeftAdapter } from '../export/peft';
import { normalizeConfig } from '../model/config';
import { openFolder } from '../model/node-files';
import { DEFAULT_LORA, loadLoraAdapters } from '../nn/lora';
import { openReference } from '../nn/reference/fixture';
import { fixtureDir } from './paths';

/** Run the CLI in-process; stdout and stderr captured. */
export function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWatching(() => {}, ...args);
}

/** Run the CLI in-process with `onErr` called on each stderr line as it is written (e.g. to stop a run midway). */
export async function cliWatching(onErr: (line: string) => void, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    out: (t) => (stdout += `${t}\n`),
    err: (t) => {
      stderr += `${t}\n`;
      onErr(t);
    },
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** The fixture's lora_grad batch as a pretokenized JSONL file, and its adapters as a PEFT folder. */
export async function loraGradFixtureFiles(name: string): Promise<{ data: string; adapter: string; loss: number }> {
  const dir = fixtureDir(name);
  const ref = await openReference(dir, 'lora_grad.safetensors');
  const [B, T] = ref.info('input_ids').shape;
  const ids = await ref.readI32('input_ids');
  const mask = await ref.readI32('loss_mask');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-eval-'));
  const data = path.join(tmp, 'rows.jsonl');
  const lines = Array.from({ length: B }, (_, b) =>
    JSON.stringify({ input_ids: Array.from(ids.subarray(b * T, (b + 1) * T)), loss_mask: Array.from(mask.subarray(b * T, (b + 1) * T)) }),
  );
  await writeFile(data, lines.join('\n') + '\n');
  const files = await openFolder(dir);
  const config = normalizeConfig(JSON.parse(await files.get('config.json')!.text()));
  const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n));
  const adapter = path.join(tmp, 'adapter');
  await mkdir(adapter);
  for (const [file, blob] of writePeftAdapter({ baseModel: name, lora: DEFAULT_LORA, adapters, model: config })) {
    await writeFile(path.join(adapter, file), new Uint8Array(await blob.arrayBuffer()));
  }
  return { data, adapter, loss: (await ref.readF32('loss'))[0] };
}

/** forward.safetensors' first sequence and the argmax of its logits at the last position. */
export async function forwardFirstSequence(name: string): Promise<{ ids: number[]; nextGreedy: number }> {
  const ref = await openReference(fixtureDir(name), 'forward.safetensors');
  const T = ref.info('input_ids').shape[1];
  const V = ref.info('logits').shape[2];
  const ids = Array.from(await ref.readI32('input_ids')).slice(0, T);
  const last = (await ref.readF32('logits')).subarray((T - 1) * V, T * V);
  let best = 0;
  for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
  return { ids, nextGreedy: best };
}
