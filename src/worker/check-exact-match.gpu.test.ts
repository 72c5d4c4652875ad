// The Check step's exact match (options.exactMatch) on tiny-llama with ARC-Easy rows: every held-out prompt answered
// by both models on the KV-cache Generator; the labels are the rows' gold choices (read from the file here), the
// dense answers equal the CPU reference's greedy continuation (src/testing/reference-greedy.ts) of the row's prompt
// as src/data formats it (lm-eval's "Question: …\nAnswer:") with the label's tokens + the margin, and the two numbers reach the comparison table, ModelEval and the recipe's evaluation lines.
import { afterAll, describe, expect, it } from 'vitest';
import { readDataset } from '../data/dataset';
import { SegmentEncoder } from '../data/tokenize';
import { EXACT_MATCH_MARGIN } from '../eval/exact-match';
import { openFolder } from '../model/node-files';
import { loadTokenizer } from '../model/tokenizer';
import { loadFixtureModel } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { fixtureDir } from '../testing/paths';
import { referenceGreedy } from '../testing/reference-greedy';
import { ARC_ROWS, countingHost, scoredAndPruned } from '../testing/worker-journey';

const h = countingHost();
afterAll(() => {
  h.restore();
  for (const d of h.devices) d.device.destroy();
});

describe('Check with exact match', () => {
  it("answers each held-out ARC prompt with both models; the dense answers are the CPU reference's", async () => {
    await scoredAndPruned(h);
    const ev = await h.request('evaluated', { type: 'evaluate', options: { maxExamples: 2, generations: 0, maxNewTokens: 1, exactMatch: true } });
    const em = ev.exactMatch!;
    expect(em.rows).toHaveLength(2);
    expect(em).toMatchObject({ skipped: 0, margin: EXACT_MATCH_MARGIN });
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
    const ref = new ReferenceModel((await loadFixtureModel(fixtureDir('tiny-llama'))).weights);
    const encoder = new SegmentEncoder(tok);
    const rows = (await readDataset(new Blob([ARC_ROWS.join('\n') + '\n']), 'arc.jsonl')).examples;
    for (const row of em.rows) {
      const arc = JSON.parse(ARC_ROWS[Number(row.where.replace('line ', '')) - 1]);
      expect(row.label.trim()).toBe(arc.choices[arc.gold].trim());
      const example = rows.find((e) => `line ${e.line}` === row.where);
      if (example?.kind !== 'text') throw new Error(`no text row at ${row.where}`);
      expect(example.prompt).toMatch(/^Question: .*\nAnswer:$/s);
      const promptIds = encoder.start(example.prompt);
      const labelTokens = encoder.encode([{ text: example.prompt, train: false }, { text: row.label, train: true }]).ids.length - promptIds.length;
      const expected = tok.decode(referenceGreedy(ref, promptIds, labelTokens + EXACT_MATCH_MARGIN, [tok.eosTokenId!]), { skipSpecialTokens: true });
      expect(row.dense, row.where).toBe(expected);
      expect(row.denseMatch).toBe(row.dense.trim() === row.label.trim());
      expect(row.prunedMatch).toBe(row.pruned.trim() === row.label.trim());
    }
    const share = (k: 'denseMatch' | 'prunedMatch' | 'denseNormalizedMatch' | 'prunedNormalizedMatch') => em.rows.filter((r) => r[k]).length / em.rows.length;
    expect([ev.dense.exactMatch, ev.pruned.exactMatch, ev.dense.normalizedExactMatch, ev.pruned.normalizedExactMatch]).toEqual([
      share('denseMatch'), share('prunedMatch'), share('denseNormalizedMatch'), share('prunedNormalizedMatch'),
    ]);
    expect(ev.dense.answered).toBe(2);
    expect(ev.table.map((r) => [r.label, r.exactMatch, r.normalizedExactMatch])).toEqual([
      ['dense', ev.dense.exactMatch, ev.dense.normalizedExactMatch],
      ['pruned', ev.pruned.exactMatch, ev.pruned.normalizedExactMatch],
    ]);
    expect(h.events.some((e) => e.type === 'progress' && /Answering the held-out prompts with the pruned model/.test(e.stage))).toBe(true);

  });
});
