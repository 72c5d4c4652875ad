// The journey's requests through the worker host in Node with a real Dawn device: dataset → score (with pause,
// resume and stop) → prune → evaluate → export, on tiny-llama and ARC-Easy rows. Expected facts come from
// ../shared/fixtures/README.md (6 layers, 7 modules) and the dataset file itself.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../model/checkpoint';
import { openFolder } from '../model/node-files';
import { DATASETS, fixtureDir } from '../testing/paths';
import { createWorkerHost } from './host';
import type { FileEntry, WorkerEvent } from './protocol';

const ARC_ROWS = readFileSync(path.join(DATASETS, 'arc/arc_easy.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 20);

async function folderEntries(name: string): Promise<FileEntry[]> {
  return [...(await openFolder(fixtureDir(name)))].map(([n, blob]) => ({ name: n, blob }));
}

function setup() {
  const events: WorkerEvent[] = [];
  const host = createWorkerHost((e) => events.push(e));
  const result = <T extends WorkerEvent['type']>(type: T, id: number) => {
    const errors = events.filter((e) => e.type === 'error' && e.requestId === id);
    if (errors.length) throw new Error(`request ${id} failed: ${JSON.stringify(errors)}`);
    const e = events.find((x) => x.type === type && 'requestId' in x && x.requestId === id);
    if (!e) throw new Error(`no ${type} for request ${id}`);
    return e as Extract<WorkerEvent, { type: T }>;
  };
  const errorOf = (id: number) => events.find((e) => e.type === 'error' && e.requestId === id);
  return { host, events, result, errorOf };
}

describe('worker host: the journey after the model', () => {
  it('reads, scores, prunes, evaluates and exports', async () => {
    const { host, events, result, errorOf } = setup();
    await host.handle({ type: 'score', id: 1, settings: {} });
    expect(errorOf(1)).toMatchObject({ error: { code: 'input', subject: 'model' } });

    await host.handle({ type: 'loadModel', id: 2, name: 'tiny-llama', files: await folderEntries('tiny-llama') });
    expect(result('modelLoaded', 2).config.numLayers).toBe(6);
    await host.handle({ type: 'score', id: 3, settings: {} });
    expect(errorOf(3)).toMatchObject({ error: { code: 'input', subject: 'dataset' } });

    const file = new Blob([ARC_ROWS.join('\n') + '\n']);
    await host.handle({ type: 'loadDataset', id: 4, file, fileName: 'arc.jsonl', options: { maxSeqLen: 128, heldOut: 4, seed: 0 } });
    const ds = result('datasetLoaded', 4).dataset;
    expect(ds).toMatchObject({ format: 'multiple-choice', multipleChoiceSchema: 'mosaicml', totalRows: 20, examples: 20, train: 16, heldOut: 4, heldOutChoiceItems: 4 });
    // Row 1's answer (choices[gold]) is what the preview marks as trained on.
    const first = JSON.parse(ARC_ROWS[0]);
    const target = ds.preview.rows[0].tokens.filter((t) => t.target).map((t) => t.text).join('');
    expect(target).toContain(first.choices[first.gold]);
    expect(ds.preview.rows[0].tokens[0].target).toBe(false);

    // A format the columns do not fit: an error naming the missing role; the dataset stays as it was.
    await host.handle({ type: 'setFormat', id: 5, options: { format: 'text', maxSeqLen: 128, heldOut: 4, seed: 0 } });
    expect(errorOf(5)).toMatchObject({ error: { code: 'dataset' } });
    expect((errorOf(5) as { error: { message: string } }).error.message).toMatch(/"text"/);

    // Score 6 steps, stopped after the first progress report: the scores cover the steps done.
    const scoring = host.handle({ type: 'score', id: 6, settings: { steps: 6, batchSize: 2, seqLen: 128 } });
    while (!events.some((e) => e.type === 'scoreStep')) await new Promise((r) => setTimeout(r, 20));
    await host.handle({ type: 'pause', id: 7 });
    expect(result('scoreControl', 7).state).toBe('paused');
    await host.handle({ type: 'resume', id: 8 });
    expect(result('scoreControl', 8).state).toBe('running');
    await host.handle({ type: 'stop', id: 9 });
    expect(result('scoreControl', 9).state).toBe('stopping');
    await scoring;
    const scored = result('scored', 6);
    expect(scored.stopped).toBe(true);
    expect(scored.scores.steps).toBeLessThan(6);
    expect(scored.losses).toHaveLength(scored.scores.steps);
    expect(scored.scores.layerScores).toHaveLength(6);
    expect(scored.scores.moduleScores.map((r) => r.length)).toEqual([7, 7, 7, 7, 7, 7]);
    await host.handle({ type: 'stop', id: 10 });
    expect(result('scoreControl', 10).state).toBe('idle');

    // A full short run for the prune (B moves from step 1 on, so 3 steps give non-zero scores).
    await host.handle({ type: 'score', id: 11, settings: { steps: 3, batchSize: 2, seqLen: 128 } });
    const full = result('scored', 11);
    expect(full.stopped).toBe(false);
    expect(full.kendall.at(-1)).toBe(1);
    expect(full.scores.layerScores.some((s) => s > 0)).toBe(true);

    await host.handle({ type: 'applyPrune', id: 12, plan: { prune: 2, merge: 1, keepFraction: 0.2, protectLast: false, rankedBy: 'paper' } });
    const pruned = result('pruned', 12);
    expect(pruned.plan.kept).toHaveLength(4);
    expect(pruned.plan.kept[0]).toBe(0);
    expect(pruned.plan.merged).toHaveLength(1);
    expect(pruned.files.map((f) => f.name)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'README.md', 'gradprune_recipe.json']));

    await host.handle({ type: 'evaluate', id: 13, options: { maxExamples: 2, generations: 1, maxNewTokens: 2 } });
    const ev = result('evaluated', 13);
    for (const m of [ev.dense, ev.pruned]) {
      expect(m.rows).toBe(2);
      expect(m.perplexity).toBeCloseTo(Math.exp(m.loss), 6);
      expect(m.items).toBe(2);
      expect([0, 0.5, 1]).toContain(m.acc);
    }
    expect(ev.generations).toHaveLength(1);
    expect(ev.generations[0].prompt).toMatch(/^Question:/);

    await host.handle({ type: 'exportZip', id: 14 });
    const ex = result('exported', 14);
    expect(ex.folderName).toBe('tiny-llama-gradprune-4L');
    const entries = unzipSync(new Uint8Array(await ex.zip.arrayBuffer()));
    expect(JSON.parse(strFromU8(entries['tiny-llama-gradprune-4L/config.json'])).num_hidden_layers).toBe(4);
    // The Check's numbers go into the recipe and the model card.
    const recipe = JSON.parse(strFromU8(entries['tiny-llama-gradprune-4L/gradprune_recipe.json']));
    expect(recipe.evaluation.map((e: { metric: string }) => e.metric.split(' ')[0])).toEqual(['loss', 'perplexity', 'acc', 'acc_norm']);
    expect(recipe.evaluation[0]).toMatchObject({ before: ev.dense.loss, after: ev.pruned.loss });
    expect(recipe.plan.num_layers_after).toBe(4);
    const card = strFromU8(entries['tiny-llama-gradprune-4L/README.md']);
    expect(card).toContain('## Evaluation');
    expect(card).toContain(ev.pruned.loss.toFixed(4));
    const reopened = await openCheckpoint(new Map(ex.files.map((f) => [f.name, f.blob])), ex.folderName);
    expect(reopened.config.numLayers).toBe(4);
  });
});
