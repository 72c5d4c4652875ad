// Step 6: the checkpoint folder streamed as it is made (weights tensor by tensor from the dense files, the merged
// receivers, the merged adapter) into the picked folder or zip file, or — small models — into memory and one zip.
// Its small files are assembled once by prunedFolderFiles: the model card and recipe with the last Check's numbers,
// and after a recovery run the card's recovery section, gradprune_recovery.json and (PEFT) the adapter folder.

import { writePeftAdapter } from '../../export/peft';
import { DirectorySink, zipFileSink } from '../../export/fs-access';
import { MemorySink, type CheckpointSink } from '../../export/sink';
import { zipFolder } from '../../export/zip';
import { prunedFolderFiles } from '../../gradprune/pruned-folder';
import { writeCheckpointTo } from '../lazy-checkpoint';
import type { RequestOf, ResultBody } from '../protocol';
import { recoveryCardSection, recoveryRecord } from '../recovery-card';
import type { StepContext } from '../session';

/** Where a separate PEFT adapter goes inside the exported folder. */
export const PEFT_FOLDER = 'adapter';

export async function exportZip(ctx: StepContext, req: RequestOf<'exportZip'>): Promise<ResultBody<'exportZip'>> {
  const { session } = ctx;
  const { adapter = 'merged', target = { kind: 'memory' } } = req;
  const pruned = session.needPruned();
  const { recovery, check } = session;
  const name = pruned.checkpoint.name;
  const folderName = recovery && adapter === 'merged' ? `${name}-recovered` : name;
  const run = check ? { ...pruned.run, evaluation: check.evaluation } : pruned.run;
  const dataFile = session.dataset?.fileName ?? 'the task data';
  const notes = recovery && {
    cardSection: recoveryCardSection(recovery.event, adapter, dataFile),
    record: recoveryRecord(recovery.event, adapter, name, { fileName: dataFile, rows: session.dataset?.dataset.totalRows ?? 0 }),
  };
  const files = await prunedFolderFiles(session.checkpoint, pruned.plan, run, notes);
  if (recovery && adapter === 'peft') {
    const peft = writePeftAdapter({ baseModel: name, lora: recovery.result.lora, adapters: recovery.result.adapters, model: pruned.checkpoint.config });
    for (const [file, blob] of peft) files.set(`${PEFT_FOLDER}/${file}`, blob);
  }
  const ckpt = recovery && adapter === 'merged' ? recovery.recovered : pruned.checkpoint;
  const base = { folderName, adapter: recovery ? adapter : null } as const;
  if (target.kind === 'memory') {
    ctx.progress(`Writing ${folderName}`);
    const sink = new MemorySink();
    await writeCheckpointTo(sink, ckpt, files);
    ctx.progress(`Zipping ${folderName}`);
    const folder = new Map([...sink.files].sort(([a], [b]) => a.localeCompare(b)));
    return { ...base, files: [...folder].map(([file, blob]) => ({ name: file, blob })), zip: await zipFolder(folder, folderName) };
  }
  // Streamed into the picked folder or zip file, tensor by tensor (an interrupted write is aborted and cleaned up).
  ctx.progress(target.kind === 'folder' ? `Writing ${folderName} into ${target.handle.name}` : `Writing ${target.handle.name}`);
  const sink: CheckpointSink = target.kind === 'folder' ? new DirectorySink(target.handle, folderName) : await zipFileSink(target.handle, folderName);
  await writeCheckpointTo(sink, ckpt, files);
  return { ...base, files: [], zip: new Blob([]), savedTo: target.kind === 'folder' ? `${target.handle.name}/${folderName}` : target.handle.name };
}
