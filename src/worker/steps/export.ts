// Step 6: the checkpoint folder streamed as it is made (weights tensor by tensor from the dense files, the merged
// receivers, the merged adapter) into the picked folder or zip file, or — small models — into memory and one zip.
// Its small files are assembled once by prunedFolderFiles: the model card and recipe with the last Check's numbers,
// and after a recovery run the card's recovery section, gradprune_recovery.json and (PEFT) the adapter folder.

import { writePeftAdapter } from '../../export/peft';
import { DirectorySink, zipFileSink } from '../../export/fs-access';
import { exportOnnxFolder, onnxFolderFiles } from '../../export/onnx/folder';
import { MemorySink, type CheckpointSink } from '../../export/sink';
import { zipFolder } from '../../export/zip';
import { prunedFolderFiles } from '../../gradprune/pruned-folder';
import { plannedFiles, writeCheckpointTo } from '../lazy-checkpoint';
import type { AdapterExport, FolderFormat, RequestOf, ResultBody } from '../protocol';
import { recoveryCardSection, recoveryRecord } from '../recovery-card';
import type { StepContext } from '../session';

/** Where a separate PEFT adapter goes inside the exported folder. */
export const PEFT_FOLDER = 'adapter';

/**
 * The folder a download makes: its name (`-recovered` with the adapter merged, `-recovered-peft` with it apart, so
 * each variant has its own), the checkpoint its weights come from, and its small files.
 */
async function exportContents(ctx: StepContext, adapter: AdapterExport) {
  const { session } = ctx;
  const pruned = session.needPruned();
  const { recovery, check } = session;
  const name = pruned.checkpoint.name;
  const folderName = recovery ? `${name}-recovered${adapter === 'peft' ? '-peft' : ''}` : name;
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
  return { folderName, files, ckpt, adapter: recovery ? adapter : null };
}

/** The model a deployment format carries: the pruned one, after a recovery run the recovered one (adapter merged). */
export function deployedCheckpoint(ctx: StepContext) {
  const pruned = ctx.session.needPruned();
  return ctx.session.recovery?.recovered ?? pruned.checkpoint;
}

/**
 * The folder a download of this format and adapter choice makes: its name, its files and sizes before anything is
 * written, and how to write it into a sink. ONNX has no separate adapter: the recovered model, merged.
 */
async function exportFolder(ctx: StepContext, adapter: AdapterExport, format: FolderFormat) {
  if (format === 'onnx') {
    const ckpt = deployedCheckpoint(ctx);
    const planned = [...onnxFolderFiles(ckpt)].map(([name, bytes]) => ({ name, bytes }));
    return { folderName: `${ckpt.name}-onnx`, adapter: null, planned, write: (sink: CheckpointSink) => exportOnnxFolder(sink, ckpt) };
  }
  const { folderName, files, ckpt, adapter: chosen } = await exportContents(ctx, adapter);
  return { folderName, adapter: chosen, planned: plannedFiles(ckpt, files), write: (sink: CheckpointSink) => writeCheckpointTo(sink, ckpt, files) };
}

/** The files a download of this variant will hold, with their sizes, before anything is written. */
export async function exportFiles(ctx: StepContext, { adapter = 'merged', format = 'safetensors' }: RequestOf<'exportFiles'>): Promise<ResultBody<'exportFiles'>> {
  const { folderName, adapter: chosen, planned } = await exportFolder(ctx, adapter, format);
  const files = [...planned].sort((a, b) => a.name.localeCompare(b.name));
  return { folderName, adapter: chosen, files, totalBytes: files.reduce((n, f) => n + f.bytes, 0) };
}

export async function exportZip(ctx: StepContext, req: RequestOf<'exportZip'>): Promise<ResultBody<'exportZip'>> {
  const { adapter = 'merged', format = 'safetensors', target = { kind: 'memory' } } = req;
  const { folderName, adapter: chosen, write } = await exportFolder(ctx, adapter, format);
  const base = { folderName, adapter: chosen } as const;
  if (target.kind === 'memory') {
    ctx.progress(`Writing ${folderName}`);
    const sink = new MemorySink();
    await write(sink);
    ctx.progress(`Zipping ${folderName}`);
    const folder = new Map([...sink.files].sort(([a], [b]) => a.localeCompare(b)));
    return { ...base, files: [...folder].map(([file, blob]) => ({ name: file, blob })), zip: await zipFolder(folder, folderName) };
  }
  // Streamed into the picked folder or zip file, tensor by tensor (an interrupted write is aborted and cleaned up).
  ctx.progress(target.kind === 'folder' ? `Writing ${folderName} into ${target.handle.name}` : `Writing ${target.handle.name}`);
  if (target.kind === 'zipFile') {
    await write(await zipFileSink(target.handle, folderName));
    return { ...base, files: [], zip: new Blob([]), savedTo: target.handle.name };
  }
  const sink = new DirectorySink(target.handle, folderName, { overwrite: target.overwrite });
  await write(sink);
  return { ...base, files: [], zip: new Blob([]), savedTo: `${target.handle.name}/${sink.savedFolder}`, ...(sink.note ? { note: sink.note } : {}) };
}
