// One line for each control a person may not know, shown as the control's tooltip and read with it by screen
// readers (NumberField's help). Score and Recover share the LoRA ones; Prune's plan controls are explained in place.

export const SETTING_HELP = {
  scoreSteps: 'LoRA training steps whose gradients give the importance. The paper uses 40; fewer is quicker and noisier (the rank-stability chart shows when the ranking has settled).',
  recoverSteps: 'Fine-tuning steps of a fresh LoRA adapter on the pruned model, to win back what pruning cost.',
  rank: 'LoRA rank r: the width of the adapters A (r × in) and B (out × r). Higher is more capacity, more memory and time.',
  alpha: 'LoRA alpha: the adapter update is scaled by alpha / r (the paper: alpha 32 with rank 8).',
  lr: 'AdamW learning rate (after a short warmup, then decayed). Too high diverges; the paper uses 1e-4.',
  batchSize: 'Rows of the dataset in each step.',
  seqLen: 'Tokens per row: longer rows are cut to this, shorter ones padded. Time and memory grow with it.',
  prune: 'The lowest-scoring layers go first; layer 0 always stays.',
  merge: 'How many of the removed layers (the highest-scoring of them) are folded into the nearest kept layer below instead of dropped. 0 drops them all.',
  keepFraction: "For each merged layer: the share of its weights, by importance, that is added into the receiving layer, and only where the sign agrees with the receiver's weight. The paper uses 0.2.",
  protectLast: 'Never remove the last decoder layer, the one that feeds the output head.',
} as const;
