import type { AdapterSummary } from '../../gpu/device';
import type { RopeConfig } from '../../model/config';
import type { FitReport, ModelSummary } from '../../model/summary';
import { formatBytes, formatExact } from '../../format';
import { useStudio } from '../store';
import { Fact, Stat } from './Stat';

/** Everything the person should know about the loaded model before running it. */
export function ModelSummaryCard() {
  const loaded = useStudio((s) => s.model.loaded);
  const gpu = useStudio((s) => s.gpu);
  if (!loaded) return null;
  const { summary: s, fit } = loaded;
  const adapter = gpu.state === 'ready' || gpu.state === 'lost' ? gpu.adapter : null;
  return (
    <section className="card summary" data-testid="summary-card" aria-labelledby="summary-title">
      <h2 id="summary-title">
        <span data-testid="summary-name">{s.name}</span>
        <span className="pill" data-testid="summary-architecture">{s.architecture}</span>
      </h2>
      <div className="summary-grid">
        <Architecture s={s} />
        <Parameters s={s} />
        <Memory s={s} />
        <Fit fit={fit} adapter={adapter} />
      </div>
      <Files s={s} paths={loaded.paths} shadowed={loaded.shadowed ?? []} />
    </section>
  );
}

function Architecture({ s }: { s: ModelSummary }) {
  return (
    <div className="facts">
      <h3>Architecture</h3>
      <dl>
        <Stat label="Decoder layers" testId="summary-layers" value={s.numLayers} />
        <Stat label="Hidden size" testId="summary-hidden" value={s.hiddenSize} />
        <Fact label="Heads (query / kv)" testId="summary-heads-row">
          <span data-testid="summary-heads" data-value={s.numHeads} title={`${s.numHeads} query heads`}>{s.numHeads}</span> /{' '}
          <span data-testid="summary-kv-heads" data-value={s.numKvHeads} title={`${s.numKvHeads} key-value heads`}>{s.numKvHeads}</span>
        </Fact>
        <Stat label="Head dim" testId="summary-head-dim" value={s.headDim} />
        <Stat label="Intermediate size" testId="summary-intermediate" value={s.intermediateSize} />
        <Stat label="Vocabulary" testId="summary-vocab" value={s.vocabSize} />
        <Fact label="Stored dtype" testId="summary-dtype" value={s.dtype}>{s.dtype}</Fact>
        <Fact label="Embeddings" testId="summary-tied" value={String(s.tiedEmbeddings)}>
          <span title={s.tiedEmbeddings ? 'lm_head shares the input embedding matrix' : 'lm_head has its own matrix'}>{s.tiedEmbeddings ? 'tied' : 'untied'}</span>
        </Fact>
        <Fact label="RoPE" testId="summary-rope" value={s.rope.type}>{describeRope(s.rope)}</Fact>
        <Stat label="Max positions" testId="summary-max-positions" value={s.maxPositionEmbeddings} />
      </dl>
    </div>
  );
}

function Parameters({ s }: { s: ModelSummary }) {
  const p = s.params;
  const share = p.total ? ((100 * p.allLayers) / p.total).toFixed(1) : '0';
  return (
    <div className="facts">
      <h3>Parameters</h3>
      <dl>
        <Stat label="Total" testId="params-total" value={p.total} kind="count" />
        <Stat label="Embeddings" testId="params-embeddings" value={p.embeddings} kind="count" />
        <Stat label="lm_head" testId="params-lm-head" value={p.lmHead} kind="count" note={p.lmHead === 0 ? '(tied)' : undefined} />
        <Stat label="Per decoder layer" testId="params-per-layer" value={p.perLayer} kind="count" />
        <Stat label="All decoder layers" testId="params-all-layers" value={p.allLayers} kind="count" note={`(${share}% of the model)`} />
        <Stat label="Final norm" testId="params-final-norm" value={p.finalNorm} kind="count" />
      </dl>
    </div>
  );
}

function Memory({ s }: { s: ModelSummary }) {
  return (
    <div className="facts">
      <h3>Weight memory</h3>
      <dl>
        <Stat label="On GPU as f16" testId="memory-f16" value={s.weightBytes.f16} kind="bytes" />
        <Stat label="On GPU as f32" testId="memory-f32" value={s.weightBytes.f32} kind="bytes" />
        <Stat label={`Stored (${s.dtype})`} testId="memory-stored" value={s.weightBytes.stored} kind="bytes" />
        <Stat label="Tensors used" testId="summary-tensor-count" value={s.tensorCount} />
      </dl>
    </div>
  );
}

function Fit({ fit, adapter }: { fit: FitReport | null; adapter: AdapterSummary | null }) {
  if (!fit || !adapter) {
    return (
      <div className="facts facts-wide">
        <h3>This GPU</h3>
        <p className="muted" data-testid="fit-status" data-value="unknown">
          No WebGPU adapter, so the fit is unknown. The summary needs no GPU; scoring and pruning do.
        </p>
      </div>
    );
  }
  return (
    <div className="facts facts-wide">
      <h3>This GPU</h3>
      <p className={fit.fits ? 'fit fit-yes' : 'fit fit-no'} data-testid="fit-status" data-value={fit.fits ? 'fits' : 'does-not-fit'}>
        {fit.fits ? 'Fits' : 'Does not fit'} on {adapter.name}
      </p>
      <dl className="facts-columns">
        <Stat label={`Needed (${fit.weightPrecision} weights)`} testId="fit-needed" value={fit.neededBytes} kind="bytes" />
        <Stat label="Available" testId="fit-available" value={fit.availableBytes} kind="bytes" />
      </dl>
      <p className="small" data-testid="fit-largest" data-value={fit.largestTensor.name}>
        Largest tensor: <code>{fit.largestTensor.name}</code>,{' '}
        <span title={`${formatExact(fit.largestTensor.bytes)} bytes`}>{formatBytes(fit.largestTensor.bytes)}</span> as {fit.weightPrecision}
      </p>
      {fit.reasons.length > 0 && (
        <ul className="fit-reasons" data-testid="fit-reasons">
          {fit.reasons.map((r) => (
            <li key={r}>{r}</li>
          ))}
        </ul>
      )}
      <p className="muted small" data-testid="fit-rule">Rule: {fit.rule}.</p>
    </div>
  );
}

/** The model's files where they are in the folder (subfolders kept), and the deeper copies of a name that were not used. */
function Files({ s, paths, shadowed }: { s: ModelSummary; paths?: Record<string, string>; shadowed: string[] }) {
  const files = s.files.map((f) => ({ ...f, path: paths?.[f.name] ?? f.name })).sort((a, b) => a.path.localeCompare(b.path));
  return (
    <details className="files">
      <summary>
        {s.files.length} files, {s.tensorCount} tensors{s.extraTensors.length ? `, ${s.extraTensors.length} ignored` : ''}
      </summary>
      <table data-testid="summary-files">
        <thead>
          <tr>
            <th scope="col">File</th>
            <th scope="col">Size</th>
          </tr>
        </thead>
        <tbody>
          {files.map((f) => (
            <tr key={f.name} data-testid="summary-file" data-path={f.path}>
              <td>
                <code>{f.path}</code>
              </td>
              <td title={`${formatExact(f.bytes)} bytes`}>{formatBytes(f.bytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {shadowed.length > 0 && (
        <p className="muted small" data-testid="summary-shadowed">
          Not used (a file of the same name nearer the top of the folder is): {shadowed.join(', ')}
        </p>
      )}
      {s.extraTensors.length > 0 && (
        <p className="muted small">
          Ignored tensors (not used by {s.architecture}): {s.extraTensors.join(', ')}
        </p>
      )}
    </details>
  );
}

function describeRope(r: RopeConfig): string {
  switch (r.type) {
    case 'default':
      return `default, θ ${r.theta}`;
    case 'linear':
      return `linear ×${r.factor}, θ ${r.theta}`;
    case 'llama3':
      return `llama3 ×${r.factor}, θ ${r.theta}`;
  }
}
