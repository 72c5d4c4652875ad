import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { igiaFileFor, parseScoresDocument } from './scores-file';

const doc = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    format: 'gradprune-scores',
    version: 1,
    model: { name: 'tiny', architecture: 'LlamaForCausalLM', numLayers: 3, fingerprint: 'f00' },
    layerScores: [3, 1, 2],
    layerScoresCode: [1, 1, 1],
    moduleScores: [[1, 0, 0, 0, 0, 0, 2], [1, 0, 0, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0, 0]],
    losses: [1],
    ...over,
  });

const parseError = (text: string, model = { numLayers: 3, fingerprint: 'f00' }) => {
  try {
    parseScoresDocument(text, 'scores.json', model);
  } catch (e) {
    expect(e).toBeInstanceOf(GradPruneError);
    expect((e as GradPruneError).code).toBe('file');
    return (e as Error).message;
  }
  throw new Error('expected a GradPruneError');
};

describe('scores.json', () => {
  it('names the IGIA state file beside it', () => {
    expect(igiaFileFor('out/scores.json')).toBe('out/scores.igia.safetensors');
    expect(igiaFileFor('run1')).toBe('run1.igia.safetensors');
  });
  it('reads a document for the same model', () => {
    expect(parseScoresDocument(doc(), 'scores.json', { numLayers: 3, fingerprint: 'f00' }).layerScores).toEqual([3, 1, 2]);
  });
  it('refuses another model: layer count or fingerprint', () => {
    expect(parseError(doc(), { numLayers: 5, fingerprint: 'f00' })).toMatch(/^scores\.json: it scores a model of 3 layers \(tiny\), but this model has 5\./);
    expect(parseError(doc(), { numLayers: 3, fingerprint: 'bee' })).toMatch(/^scores\.json: it was computed on a different model/);
  });
  it('refuses a file that is not a scores document, or has malformed scores', () => {
    expect(parseError('{nope')).toMatch(/^scores\.json is not valid JSON/);
    expect(parseError('{"layerScores": [1]}')).toMatch(/not a GradPruner scores file/);
    expect(parseError(doc({ layerScores: [1, 2] }))).toMatch(/"layerScores" must be a list of 3 finite numbers/);
    expect(parseError(doc({ moduleScores: [[1]] }))).toMatch(/"moduleScores" must be 3 rows of 7 numbers/);
  });
});
