// The Recover panel's starting choices: the paper's fine-tuning (LoRA rank 8, alpha 32, lr 1e-4, linear decay after
// a 3% warmup), as the engine's DEFAULT_RECOVERY_SETTINGS (checked by recover-defaults.test.ts; the page does not
// import the GPU engine to read them). A run can be stopped at any step and still gives its before / after table.

import type { RecoverSettings } from '../worker/protocol';

export const DEFAULT_RECOVER_SETTINGS: RecoverSettings = {
  by: 'steps',
  steps: 100,
  epochs: 1,
  rank: 8,
  alpha: 32,
  lr: 1e-4,
  batchSize: 4,
  seqLen: 256,
  schedule: 'linear',
};
