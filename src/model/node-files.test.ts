// Files past 4 GiB, read through NodeFileBlob: exact sizes, tensor ranges and bytes beyond 2^32, slices of
// slices, and the truncated-shard message. The big files are sparse (their data is a hole), so they cost no disk.

import { mkdir, mkdtemp, open, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { writeSparseSafetensors, type SparseFileLayout } from '../testing/sparse-checkpoint';
import { NodeFileBlob, fileSystemError, openFile, openFolder } from './node-files';
import { SafetensorsFile, TensorStore } from './safetensors';

const GiB = 2 ** 30;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-bigfile-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Open file descriptors of this process (Linux), to see that reads close what they open. */
const openFds = async () => (await readdir('/proc/self/fd')).length;

describe('NodeFileBlob on a sparse file over 4 GiB', () => {
  // "head" [4] F32 at the start; "filler" spans the 4 GiB boundary; "tail" [8] F32 lies wholly past 4.5 GiB.
  const FILLER = 4.5 * GiB; // BF16 elements: 2 bytes each
  const tensors = [
    { name: 'head', dtype: 'F32', shape: [4], bytesPerElement: 4 },
    { name: 'filler', dtype: 'BF16', shape: [FILLER / 2 / 1024, 1024], bytesPerElement: 2 },
    { name: 'tail', dtype: 'F32', shape: [8], bytesPerElement: 4 },
  ];
  const tailValues = new Float32Array([1, -2, 3.5, 1e9, -0.25, 7, 8, 4294967296]);
  let file: string;
  let layout: SparseFileLayout;

  beforeAll(async () => {
    file = path.join(tmp, 'big.safetensors');
    layout = await writeSparseSafetensors(file, tensors);
    const fh = await open(file, 'r+');
    try {
      // Known bytes in the hole: the tail tensor, and a marker just past 2^32 inside the filler.
      await fh.write(new Uint8Array(tailValues.buffer), 0, 32, layout.ranges.get('tail')!.begin);
      await fh.write(new Uint8Array([0xde, 0xad, 0xbe, 0xef]), 0, 4, 2 ** 32 + 1000);
    } finally {
      await fh.close();
    }
  });

  it('has the exact size, not the size modulo 2^32', async () => {
    const blob = await openFile(file);
    const expected = layout.dataStart + 16 + FILLER + 32;
    expect(layout.fullSize).toBe(expected);
    expect(expected).toBeGreaterThan(2 ** 32);
    expect(blob.size).toBe(expected);
    expect(blob).toBeInstanceOf(Blob);
    expect((blob as NodeFileBlob).name).toBe('big.safetensors');
    const folder = await openFolder(tmp);
    expect(folder.get('big.safetensors')!.size).toBe(expected);
  });

  it('parses the header with every tensor at its exact range, and reads the tensor past 4 GiB', async () => {
    const st = await SafetensorsFile.open(await openFile(file), 'big.safetensors');
    const d = layout.dataStart;
    expect(d % 8).toBe(0);
    expect(st.info('head')).toMatchObject({ begin: d, end: d + 16 });
    expect(st.info('filler')).toMatchObject({ begin: d + 16, end: d + 16 + FILLER, shape: [FILLER / 2048, 1024] });
    expect(st.info('tail')).toMatchObject({ begin: d + 16 + FILLER, end: d + 16 + FILLER + 32 });
    expect(st.info('tail').begin).toBeGreaterThan(4.5 * GiB);
    const store = TensorStore.fromFiles([st]);
    expect(await store.readF32('tail')).toEqual(tailValues);
    expect(await store.readF32('head')).toEqual(new Float32Array(4)); // the hole reads as zeros
  });

  it('reads slices and slices of slices at positions past 2^32', async () => {
    const blob = await openFile(file);
    const at = 2 ** 32 + 1000;
    expect([...new Uint8Array(await blob.slice(at, at + 4).arrayBuffer())]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    // A slice from 4 GiB − 8 on, then a slice of that slice, then one more with a negative end.
    const outer = blob.slice(2 ** 32 - 8);
    expect(outer.size).toBe(blob.size - (2 ** 32 - 8));
    const inner = outer.slice(1000 + 6, 1000 + 14); // bytes at − 2 .. at + 6
    expect(inner.size).toBe(8);
    expect([...new Uint8Array(await inner.arrayBuffer())]).toEqual([0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0]);
    expect([...new Uint8Array(await inner.slice(2, -2).arrayBuffer())]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect([...(await inner.slice(-3).bytes())]).toEqual([0xef, 0, 0]);
    // The last 32 bytes are the tail tensor, through a negative start and through stream().
    const last = blob.slice(-32);
    expect(new Float32Array(await last.arrayBuffer())).toEqual(tailValues);
    const chunks: Uint8Array[] = [];
    for await (const c of last.stream() as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
    expect(new Float32Array(Uint8Array.from(Buffer.concat(chunks)).buffer)).toEqual(tailValues);
    // Out-of-range and reversed slices clamp to empty, as Blob.slice does.
    expect(blob.slice(blob.size + 10).size).toBe(0);
    expect(blob.slice(10, 5).size).toBe(0);
    expect((await blob.slice(10, 5).arrayBuffer()).byteLength).toBe(0);
  });

  it('keeps no file open between reads', async () => {
    const blob = await openFile(file);
    const before = await openFds();
    for (let i = 0; i < 50; i++) await blob.slice(2 ** 32 + i, 2 ** 32 + i + 4).arrayBuffer();
    expect(await openFds()).toBe(before);
  });
});

describe('NodeFileBlob on small files', () => {
  it('reads text, bytes and slices like a Blob of the same bytes', async () => {
    const text = '\u{feff}{"héllo": "wörld ✓"}\n';
    const f = path.join(tmp, 'small.json');
    await writeFile(f, text);
    const ours = await openFile(f);
    const native = new Blob([text]);
    expect(ours.size).toBe(native.size);
    expect(await ours.text()).toBe(await native.text());
    for (const [a, b] of [[0, 3], [3, undefined], [-5, -1], [2, 2], [undefined, undefined]] as const) {
      expect(new Uint8Array(await ours.slice(a, b).arrayBuffer())).toEqual(new Uint8Array(await native.slice(a, b).arrayBuffer()));
    }
    expect(ours.slice(0, 4, 'Text/Plain').type).toBe('text/plain');
    expect(JSON.parse((await ours.text()).replace(/^\ufeff/, ''))).toEqual({ héllo: 'wörld ✓' });
  });
  it('reports a file that became shorter after it was opened', async () => {
    const f = path.join(tmp, 'shrinks.bin');
    await writeFile(f, new Uint8Array(100));
    const blob = await openFile(f);
    await writeFile(f, new Uint8Array(10));
    const err = await blob.slice(0, 100).arrayBuffer().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).message).toMatch(/^shrinks\.bin: the file ended at byte 10 while reading bytes 0–100; it was truncated or changed/);
  });
  it('fails with the file named for a missing file', async () => {
    await expect(openFile(path.join(tmp, 'nope.bin'))).rejects.toThrow(/Cannot read .*nope\.bin \(ENOENT\)/);
  });
});

describe('a truncated ~5 GB shard', () => {
  it('names the shard and the tensor that runs past the end of the file', async () => {
    const dir = path.join(tmp, 'truncated');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const shard = 'model-00001-of-00004.safetensors';
    // Two tensors of 2.5 GB each (5 GB of data); the download stopped at 4.5 GiB, inside the second.
    const tensors = ['model.layers.0.mlp.down_proj.weight', 'model.layers.0.mlp.up_proj.weight'].map((name) => ({
      name,
      dtype: 'BF16',
      shape: [1_250_000, 1000],
      bytesPerElement: 2,
    }));
    const layout = await writeSparseSafetensors(path.join(dir, shard), tensors, { truncateTo: 4.5 * GiB });
    const weightMap = Object.fromEntries(tensors.map((t) => [t.name, shard]));
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 5e9 }, weight_map: weightMap }));
    const err = await TensorStore.open(await openFolder(dir)).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    const end = layout.ranges.get('model.layers.0.mlp.up_proj.weight')!.end;
    expect(end).toBe(layout.dataStart + 5e9);
    expect((err as GradPruneError).message).toBe(
      `${shard}: tensor "model.layers.0.mlp.up_proj.weight" ends at byte ${end}, past the end of the file (${4.5 * GiB} bytes); the file is truncated. The download or copy stopped early: download (or export) the file again.`,
    );
    expect((err as GradPruneError).subject).toBe(shard);
  });
});

describe('file-system errors', () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: raw`), { code });

  it('each names the path, says what the code means and what to do', () => {
    // EACCES cannot be provoked as root (the tests may run as root), so the mapping is checked on the error itself.
    const e = fileSystemError('/m/config.json', errno('EACCES'));
    expect(e).toBeInstanceOf(GradPruneError);
    expect(e.message).toBe('Cannot read /m/config.json (EACCES): permission denied. Make it readable for your user (chmod u+r), or copy it somewhere you can read.');
    expect(e.subject).toBe('/m/config.json');
    expect(fileSystemError('/m', errno('ELOOP')).message).toMatch(/^Cannot read \/m \(ELOOP\): a symbolic link loops back on itself\./);
    expect(fileSystemError('/m', errno('EWHATEVER')).message).toMatch(/^Cannot read \/m \(EWHATEVER\): EWHATEVER: raw\. Check the path/);
  });

  it('a dangling link to an unrelated file is skipped; to a model file it is named with its target', async () => {
    const dir = path.join(tmp, 'links');
    await mkdir(dir);
    await writeFile(path.join(dir, 'config.json'), '{}');
    await symlink('/nonexistent/README.md', path.join(dir, 'README.md'));
    expect([...(await openFolder(dir)).keys()]).toEqual(['config.json']);
    await symlink('/nonexistent/tokenizer.json', path.join(dir, 'tokenizer.json'));
    await expect(openFolder(dir)).rejects.toThrow(/tokenizer\.json is a symbolic link to \/nonexistent\/tokenizer\.json, which does not exist/);
  });

  it('a folder given as a file, and a file given as a folder', async () => {
    await expect(openFile(tmp)).rejects.toThrow(/\(EISDIR\): it is a folder, not a file/);
    const file = path.join(tmp, 'plain.txt');
    await writeFile(file, 'x');
    await expect(openFolder(file)).rejects.toThrow(/plain\.txt is a file, not a folder/);
  });
});
