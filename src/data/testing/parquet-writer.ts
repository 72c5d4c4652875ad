// Test-only: a minimal Parquet writer (one row group, REQUIRED flat columns, PLAIN encoding, uncompressed), written
// from the Parquet format spec (parquet.thrift, Thrift compact protocol) because no Parquet writer is installed.
// Reading what it writes exercises src/data's Parquet path through hyparquet, an independent reader.

/** `chunkName`: the column name written in the chunk's metadata, when a test wants it to differ from the schema's (damaged metadata). */
type Column = ({ name: string; type: 'string'; values: string[] } | { name: string; type: 'int64'; values: number[] }) & { chunkName?: string };

class Compact {
  bytes: number[] = [];
  private last: number[] = [0];
  varint(n: bigint) {
    let v = n;
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) b |= 0x80;
      this.bytes.push(b);
    } while (v !== 0n);
  }
  zigzag(n: number | bigint) {
    const v = BigInt(n);
    this.varint(v >= 0n ? v << 1n : ((-v) << 1n) - 1n);
  }
  field(id: number, type: number) {
    const delta = id - this.last[this.last.length - 1];
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.last[this.last.length - 1] = id;
  }
  i32(id: number, v: number) {
    this.field(id, 5);
    this.zigzag(v);
  }
  i64(id: number, v: number) {
    this.field(id, 6);
    this.zigzag(v);
  }
  binary(id: number, s: string) {
    this.field(id, 8);
    this.rawBinary(s);
  }
  rawBinary(s: string) {
    const b = new TextEncoder().encode(s);
    this.varint(BigInt(b.length));
    this.bytes.push(...b);
  }
  struct(id: number, body: () => void) {
    this.field(id, 12);
    this.inner(body);
  }
  inner(body: () => void) {
    this.last.push(0);
    body();
    this.bytes.push(0);
    this.last.pop();
  }
  list(id: number, elemType: number, n: number, each: (i: number) => void) {
    this.field(id, 9);
    if (n < 15) this.bytes.push((n << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(BigInt(n));
    }
    for (let i = 0; i < n; i++) each(i);
  }
}

function plainValues(c: Column): Uint8Array {
  const out: number[] = [];
  if (c.type === 'string') {
    for (const s of c.values) {
      const b = new TextEncoder().encode(s);
      out.push(b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24, ...b);
    }
  } else {
    for (const v of c.values) {
      const dv = new DataView(new ArrayBuffer(8));
      dv.setBigInt64(0, BigInt(v), true);
      out.push(...new Uint8Array(dv.buffer));
    }
  }
  return new Uint8Array(out);
}

export function writeParquet(columns: Column[]): Uint8Array {
  const numRows = columns[0].values.length;
  const file: number[] = [...new TextEncoder().encode('PAR1')];
  const chunks: { offset: number; size: number; column: Column }[] = [];
  for (const column of columns) {
    const data = plainValues(column);
    const header = new Compact();
    header.inner(() => {
      header.i32(1, 0); // DATA_PAGE
      header.i32(2, data.length);
      header.i32(3, data.length);
      header.struct(5, () => {
        header.i32(1, numRows);
        header.i32(2, 0); // PLAIN
        header.i32(3, 3); // RLE definition levels (none: REQUIRED)
        header.i32(4, 3);
      });
    });
    const offset = file.length;
    file.push(...header.bytes, ...data);
    chunks.push({ offset, size: file.length - offset, column });
  }
  const meta = new Compact();
  meta.inner(() => {
    meta.i32(1, 1);
    meta.list(2, 12, columns.length + 1, (i) =>
      meta.inner(() => {
        if (i === 0) {
          meta.binary(4, 'schema');
          meta.i32(5, columns.length);
          return;
        }
        const c = columns[i - 1];
        meta.i32(1, c.type === 'string' ? 6 : 2); // BYTE_ARRAY or INT64
        meta.i32(3, 0); // REQUIRED
        meta.binary(4, c.name);
        if (c.type === 'string') meta.i32(6, 0); // UTF8
      }),
    );
    meta.i64(3, numRows);
    meta.list(4, 12, 1, () =>
      meta.inner(() => {
        meta.list(1, 12, chunks.length, (i) =>
          meta.inner(() => {
            const { offset, size, column } = chunks[i];
            meta.i64(2, offset);
            meta.struct(3, () => {
              meta.i32(1, column.type === 'string' ? 6 : 2);
              meta.list(2, 5, 1, () => meta.zigzag(0));
              meta.list(3, 8, 1, () => meta.rawBinary(column.chunkName ?? column.name));
              meta.i32(4, 0); // UNCOMPRESSED
              meta.i64(5, numRows);
              meta.i64(6, size);
              meta.i64(7, size);
              meta.i64(9, offset);
            });
          }),
        );
        meta.i64(2, chunks.reduce((s, c) => s + c.size, 0));
        meta.i64(3, numRows);
      }),
    );
  });
  const len = meta.bytes.length;
  file.push(...meta.bytes, len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >>> 24, ...new TextEncoder().encode('PAR1'));
  return new Uint8Array(file);
}
