// Where tests find the shared reference data: ../shared beside the checkout (CI clones main with shared/ beside it).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED = path.resolve(REPO_ROOT, '../shared');
export const FIXTURES = path.join(SHARED, 'fixtures');
export const DATASETS = path.join(SHARED, 'datasets');
export const DEMO = path.join(REPO_ROOT, 'public/demo');

export const FIXTURE_MODELS = ['tiny-llama', 'tiny-qwen2', 'tiny-mistral', 'tiny-qwen3', 'tiny-random-llama-2'] as const;
export const SCORED_FIXTURE_MODELS = ['tiny-llama', 'tiny-qwen2', 'tiny-mistral', 'tiny-qwen3'] as const;
export const fixtureDir = (name: string) => path.join(FIXTURES, name);
