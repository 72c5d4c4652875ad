// CPU reference of the token embedding (./embedding.ts): out `=`.

import type { Ints, Vec } from './cpu-storage';

/** out (N, C) = wte (V, C)[ids (N)]; ids outside [0, V) give zero rows. */
export function embeddingForward(out: Vec, ids: Ints, wte: Vec, V: number, C: number): void {
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (id >= 0 && id < V) out.set(wte.subarray(id * C, (id + 1) * C), n * C);
    else out.fill(0, n * C, (n + 1) * C);
  }
}
