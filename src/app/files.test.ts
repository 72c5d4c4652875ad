import { describe, expect, it } from 'vitest';
import { flattenByName, type PickedFile } from './files';

const file = (path: string, text = path): PickedFile => ({ path, blob: new Blob([text]) });

describe('flattenByName', () => {
  it('flattens a dropped folder and names it', () => {
    const flat = flattenByName([
      file('tiny-qwen2/config.json'),
      file('tiny-qwen2/model.safetensors'),
      file('tiny-qwen2/reference/forward.safetensors'),
    ]);
    expect(flat.folderName).toBe('tiny-qwen2');
    expect(flat.files.map((f) => f.name).sort()).toEqual(['config.json', 'forward.safetensors', 'model.safetensors']);
    expect(flat.shadowed).toEqual([]);
  });

  it("keeps each file's place in the folder for the file list: subfolders shown, the folder's own name left off", () => {
    const flat = flattenByName([file('tiny-qwen2/config.json'), file('tiny-qwen2/reference/forward.safetensors'), file('tiny-qwen2/reference/deep/a.json')]);
    expect(flat.paths).toEqual({ 'config.json': 'config.json', 'forward.safetensors': 'reference/forward.safetensors', 'a.json': 'reference/deep/a.json' });
    expect(flattenByName([file('config.json')]).paths).toEqual({ 'config.json': 'config.json' });
  });

  it('keeps the shallowest file when names repeat', async () => {
    const flat = flattenByName([file('m/sub/config.json', 'deep'), file('m/config.json', 'top')]);
    expect(flat.files).toHaveLength(1);
    expect(await flat.files[0].blob.text()).toBe('top');
    expect(flat.shadowed).toEqual(['m/sub/config.json']);
  });

  it('has no folder name for loose files and skips hidden files', () => {
    const flat = flattenByName([file('config.json'), file('.DS_Store'), file('tokenizer.json')]);
    expect(flat.folderName).toBeNull();
    expect(flat.files.map((f) => f.name)).toEqual(['config.json', 'tokenizer.json']);
  });

  it('has no folder name when two folders were dropped together', () => {
    expect(flattenByName([file('a/config.json'), file('b/x.json')]).folderName).toBeNull();
  });
});
