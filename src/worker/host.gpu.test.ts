// The worker's request handling in Node with a real Dawn device: results, errors by request id, and a lost
// device that is reported while the worker carries on. Expected shapes: ../shared/fixtures/README.md.
import { describe, expect, it } from 'vitest';
import { folderEntries, hostWithDevices as setup } from '../testing/worker-journey';

describe('worker host', () => {
  it('announces the adapter, then answers loadModel with the summary and fit', async () => {
    const { host, events } = setup();
    await host.start();
    expect(events[0]).toMatchObject({ type: 'adapter', requestId: null });
    expect(events[0].type === 'adapter' && events[0].adapter?.maxBufferSize).toBeGreaterThan(0);

    await host.handle({ type: 'loadModel', id: 7, name: 'tiny-mistral', files: await folderEntries('tiny-mistral') });
    const loaded = events.find((e) => e.type === 'modelLoaded');
    expect(loaded).toBeDefined();
    if (loaded?.type !== 'modelLoaded') throw new Error('unreachable');
    expect(loaded.requestId).toBe(7);
    // README: MistralForCausalLM, F16, 4 layers, hidden 80, 5 / 1 heads, head_dim 16, intermediate 200, vocab 512, untied.
    expect(loaded.summary).toMatchObject({
      name: 'tiny-mistral', architecture: 'MistralForCausalLM', dtype: 'F16', numLayers: 4, hiddenSize: 80,
      numHeads: 5, numKvHeads: 1, headDim: 16, intermediateSize: 200, vocabSize: 512, tiedEmbeddings: false,
    });
    expect(loaded.fit?.fits).toBe(true);
    expect(host.loadedModel()).toBe('tiny-mistral');
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('answers a bad model with an error event carrying the request id, and keeps the previous model and its dataset', async () => {
    const { host, events } = setup();
    await host.handle({ type: 'loadModel', id: 1, name: 'tiny-llama', files: await folderEntries('tiny-llama') });
    expect(host.loadedModel()).toBe('tiny-llama');
    const loaded = events.find((e) => e.type === 'modelLoaded');
    const fingerprint = loaded?.type === 'modelLoaded' ? loaded.fingerprint : '';
    expect(fingerprint).toMatch(/^[0-9a-f]{32}$/);
    const rows = Array.from({ length: 4 }, (_, i) => JSON.stringify({ instruction: `Say ${i}.`, output: `${i}` })).join('\n');
    await host.handle({ type: 'loadDataset', id: 2, file: new Blob([rows]), fileName: 'say.jsonl', options: { maxSeqLen: 32, heldOut: 0, seed: 0 } });
    const dataset = events.find((e) => e.type === 'datasetLoaded');
    expect(dataset?.type === 'datasetLoaded' && dataset.dataset.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    const files = (await folderEntries('tiny-llama')).filter((f) => f.name !== 'config.json');
    await host.handle({ type: 'loadModel', id: 3, name: 'no-config', files });
    const err = events.find((e) => e.type === 'error');
    expect(err).toMatchObject({ type: 'error', requestId: 3, error: { code: 'config', subject: 'config.json' } });
    expect(host.loadedModel()).toBe('tiny-llama');
    // The dataset is still the session's: setFormat reads it again without a new drop.
    await host.handle({ type: 'setFormat', id: 4, options: { maxSeqLen: 32, heldOut: 0, seed: 0 } });
    expect(events.at(-1)).toMatchObject({ type: 'datasetLoaded', requestId: 4, dataset: { fileName: 'say.jsonl' } });
  });

  it('turns malformed and unknown requests into error events', async () => {
    const { host, events } = setup();
    await host.handle('not a request');
    await host.handle({ type: 'frobnicate', id: 3 });
    expect(events).toMatchObject([
      { type: 'error', requestId: null, error: { code: 'input' } },
      { type: 'error', requestId: 3, error: { code: 'input' } },
    ]);
  });

  it('reports a lost device and serves the next requests with a new one', async () => {
    const { host, events, devices } = setup();
    await host.start();
    expect(devices).toHaveLength(1);
    devices[0].device.destroy();
    await devices[0].lost;
    await new Promise((r) => setTimeout(r, 0)); // let the host's own .then on `lost` run
    expect(events.find((e) => e.type === 'deviceLost')).toMatchObject({ type: 'deviceLost', requestId: null, error: { code: 'gpu' } });

    await host.handle({ type: 'probeGpu', id: 4 });
    expect(devices).toHaveLength(2);
    const probed = events.filter((e) => e.type === 'adapter').at(-1);
    expect(probed).toMatchObject({ type: 'adapter', requestId: 4 });
    expect(probed?.type === 'adapter' && probed.adapter).toBeTruthy();

    await host.handle({ type: 'loadModel', id: 5, name: 'tiny-qwen2', files: await folderEntries('tiny-qwen2') });
    expect(events.at(-1)).toMatchObject({ type: 'modelLoaded', requestId: 5, summary: { numLayers: 5 } });
    expect(devices).toHaveLength(2); // the working device is reused, not re-requested
  });
});
