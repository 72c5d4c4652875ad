// The storage of the CPU references (<op>.cpu.ts, one per op, beside its kernel): the caller's arrays. The
// Hugging Face-checked reference model (src/nn/reference/model.ts) stores in Float32Array with double accumulation
// and the f32 rounding PyTorch's kernels make between steps; the finite-difference tests store in Float64Array,
// where nothing is rounded.

export type Vec = Float32Array | Float64Array;
export type Ints = Int32Array | ArrayLike<number>;

const exact = (x: number) => x;

/** Rounds a value as `out` stores it: to f32 for a Float32Array (Math.fround), not at all for a Float64Array. */
export const roundingOf = (out: Vec): ((x: number) => number) => (out instanceof Float32Array ? Math.fround : exact);
