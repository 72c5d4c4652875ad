// What every fuzz test asks of one case: a result or a GradPruneError (nothing untyped), quickly, in bounded memory;
// and how many cases, from which seed.
import { GradPruneError } from '../errors';

/** Milliseconds one case may take: the inputs are small, so anything near this is a hang in the making. */
const CASE_MS = 2_000;
/** Resident memory a whole fuzz file may add: small inputs must not make large allocations. */
const MEMORY_BYTES = 1 << 30;
/** GRADPRUNE_FUZZ_SCALE=10 runs ten times the cases (a deeper search than the unit tier's time allows). */
const SCALE = Number(process.env.GRADPRUNE_FUZZ_SCALE ?? 1);
/** The same cases on every run (CI stays reproducible); GRADPRUNE_FUZZ_SEED=<n> or =random searches elsewhere. */
const SEED = process.env.GRADPRUNE_FUZZ_SEED === 'random' ? undefined : Number(process.env.GRADPRUNE_FUZZ_SEED ?? 20261202);
const rssAtStart = process.memoryUsage().rss;

/** fast-check parameters for `n` cases (scaled) from the fuzz seed. */
export const runs = (n: number) => ({ numRuns: Math.round(n * SCALE), seed: SEED });

/** Run `f`; it may return or throw a GradPruneError, nothing else; within CASE_MS and the memory bound. */
export async function typedOnly<T>(f: () => Promise<T> | T): Promise<T | GradPruneError> {
  const started = performance.now();
  let result: T | GradPruneError;
  try {
    result = await f();
  } catch (e) {
    if (!(e instanceof GradPruneError)) throw new Error(`untyped ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`, { cause: e });
    result = e;
  }
  const ms = performance.now() - started;
  if (ms > CASE_MS) throw new Error(`one case took ${ms.toFixed(0)} ms`);
  const grown = process.memoryUsage().rss - rssAtStart;
  if (grown > MEMORY_BYTES) throw new Error(`resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  return result;
}
