import { reprobeGpu } from '../actions/model';
import { useStudio } from '../store';

/** Shown when the browser has no WebGPU or no adapter: what to do about it, and what still works. */
export function NoWebGpu() {
  const error = useStudio((s) => (s.gpu.state === 'unavailable' ? s.gpu.error : null));
  if (!error) return null;
  return (
    <section className="card no-webgpu" data-testid="no-webgpu" aria-labelledby="no-webgpu-title">
      <h2 id="no-webgpu-title">This browser cannot reach a GPU through WebGPU</h2>
      <p className="error-text" data-testid="no-webgpu-reason">{error.message}</p>
      <p>Scoring, pruning and checking a model run on your GPU. To enable them:</p>
      <ul>
        <li>Use a recent desktop <strong>Chrome or Edge</strong> (version 113 or later), or Safari 26 / Firefox 141 or later where WebGPU is on.</li>
        <li>
          On Linux, start Chrome with <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>, or turn on{' '}
          <code>chrome://flags/#enable-unsafe-webgpu</code>.
        </li>
        <li>
          Open <code>chrome://gpu</code> and look for “WebGPU: Hardware accelerated”. If it says disabled, turn on “Use graphics
          acceleration when available” in the browser’s settings and update the GPU driver.
        </li>
      </ul>
      <p>You can still load a model below to read its summary: that needs no GPU.</p>
      <button type="button" onClick={() => void reprobeGpu()}>
        Try again
      </button>
    </section>
  );
}
