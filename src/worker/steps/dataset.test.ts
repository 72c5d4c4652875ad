// The dataset step refuses a file none of whose rows survive tokenizing, and says which rows and why.
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { fixtureDir } from '../../testing/paths';
import { RunStore } from '../run-store';
import { Session, type StepContext } from '../session';
import { loadDataset } from './dataset';

describe('dataset step', () => {
  it('names the rows and the reason when no example is left after tokenizing', async () => {
    const checkpoint = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')), 'tiny-llama');
    const session = new Session(checkpoint);
    const ctx = { id: 1, session, progress: () => {}, post: () => {}, gpu: () => Promise.reject(new Error('no GPU here')), runs: new RunStore(async () => null) } as StepContext;
    const rows = [[1, 2, 999999], [3, 999999, 4]].map((ids) => JSON.stringify({ input_ids: ids }));
    const file = new Blob([rows.join('\n')]);
    const err = await loadDataset(ctx, { file, fileName: 'ids.jsonl', options: { maxSeqLen: 16, heldOut: 0.2, seed: 0 } }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^ids\.jsonl: no example is left after tokenizing \(2 rows rejected\): token id 999999 .+outside the tokenizer's vocabulary.+\(1 row, first at line 1\)/);
    expect(session.dataset).toBeNull();
  });
});
