// Node only (the CLI): a checkpoint written as one GGUF file, streamed into `<target>.tmp-…` beside the target and
// renamed into place when complete (an existing file replaced only with overwrite; see ../node-output.ts).

import path from 'node:path';
import { formatBytes } from '../../format';
import { writeFilesReplacing } from '../node-output';
import { ggufChunks, ggufFileBytes, planGguf, GGUF_DTYPES, type GgufDType, type GgufSource } from './gguf';

export { GGUF_DTYPES };

export interface GgufFileJob {
  ckpt: GgufSource;
  /** The checked, resolved output path. */
  target: string;
  /** --out as typed, for messages. */
  given: string;
  dtype: string;
  overwrite: boolean;
  io: { err(text: string): void };
}

export async function writeGgufFile(job: GgufFileJob): Promise<void> {
  const dtype = job.dtype as GgufDType;
  if (!GGUF_DTYPES.includes(dtype)) throw new Error(`GGUF dtype ${job.dtype} is not one of ${GGUF_DTYPES.join(', ')}`);
  const plan = await planGguf(job.ckpt, dtype);
  for (const note of plan.notes) job.io.err(note);
  const arch = plan.metadata.get('general.architecture')!.value as string;
  job.io.err(`gguf  ${arch}, ${plan.tensors.length} tensors, ${dtype}: ${formatBytes(ggufFileBytes(plan))}`);
  await writeFilesReplacing([{ target: job.target, content: () => ggufChunks(plan), given: job.given }], { overwrite: job.overwrite });
  job.io.err(`wrote ${path.basename(job.target)} to ${path.dirname(job.given) === '.' ? '.' : path.dirname(job.given)}`);
}
