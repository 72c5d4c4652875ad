import { reprobeGpu } from '../actions/model';
import { formatBytes, formatExact } from '../../format';
import { useStudio } from '../store';

/** The studio's name and the WebGPU adapter the worker found (or why there is none). */
export function Header() {
  return (
    <header className="header">
      <div className="brand">
        <span className="brand-name">GradPrune Studio</span>
        <span className="brand-tag">prune LLM layers on your own GPU, guided by LoRA gradients</span>
      </div>
      <AdapterInfo />
    </header>
  );
}

function AdapterInfo() {
  const gpu = useStudio((s) => s.gpu);
  if (gpu.state === 'probing') {
    return <div className="adapter" data-testid="adapter" data-state="probing">Looking for a WebGPU adapter…</div>;
  }
  if (gpu.state === 'unavailable') {
    return (
      <div className="adapter adapter-missing" data-testid="adapter" data-state="unavailable">
        <strong>No WebGPU</strong> <span className="muted">— summaries only</span>
      </div>
    );
  }
  const a = gpu.adapter;
  return (
    <div className="adapter" data-testid="adapter" data-state={gpu.state}>
      <div className="adapter-name" data-testid="adapter-name" title={a.name}>
        {a.name}
        {a.isSoftware && (
          <span className="pill pill-warn" data-testid="adapter-software" title="A software (CPU) rasterizer: correct but slow">
            software
          </span>
        )}
      </div>
      <dl className="adapter-facts">
        <div>
          <dt>shader-f16</dt>
          <dd data-testid="adapter-f16">{a.shaderF16 ? 'yes' : 'no'}</dd>
        </div>
        <div>
          <dt>max buffer</dt>
          <dd data-testid="adapter-max-buffer" data-value={a.maxBufferSize} title={`${formatExact(a.maxBufferSize)} bytes`}>
            {formatBytes(a.maxBufferSize)}
          </dd>
        </div>
        <div>
          <dt>max storage binding</dt>
          <dd data-testid="adapter-max-binding" data-value={a.maxStorageBufferBindingSize} title={`${formatExact(a.maxStorageBufferBindingSize)} bytes`}>
            {formatBytes(a.maxStorageBufferBindingSize)}
          </dd>
        </div>
      </dl>
      {gpu.state === 'lost' && (
        <div className="adapter-lost" role="alert" data-testid="device-lost">
          {gpu.error.message}{' '}
          <button type="button" className="link-button" onClick={() => void reprobeGpu()}>
            Reconnect
          </button>
        </div>
      )}
    </div>
  );
}
