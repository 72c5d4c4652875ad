// Step 6's "try it": the pruned model exported as ONNX and run in this tab (onnxruntime-web) beside our engine.
// The panel keeps the answer itself (one panel, nothing else reads it), so this action only asks the worker.

import type { OnnxTriedEvent } from '../../worker/protocol';
import { useStudio } from '../store';
import { worker } from '../worker-connection';
import { jobSettings, withActivity } from './job';

export async function tryOnnx(prompt: string): Promise<OnnxTriedEvent> {
  const { maxNewTokens } = useStudio.getState().evaluateOptions;
  return withActivity('download', 'Exporting ONNX', () => worker().request({ type: 'tryOnnx', prompt, maxNewTokens, ...jobSettings() }));
}
