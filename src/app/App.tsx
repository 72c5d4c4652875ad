import { CheckStep } from './components/CheckStep';
import { DatasetStep } from './components/DatasetStep';
import { DownloadStep } from './components/DownloadStep';
import { Header } from './components/Header';
import { PruneStep } from './components/PruneStep';
import { ScoreStep } from './components/ScoreStep';
import { ModelStep } from './components/ModelStep';
import { ModelSummaryCard } from './components/ModelSummaryCard';
import { NoWebGpu } from './components/NoWebGpu';
import { Notice } from './components/Notice';
import { StepList } from './components/StepList';
import { useSavedRun, useStudioWorker } from './hooks';
import { useStudio } from './store';

export function App() {
  useStudioWorker();
  useSavedRun();
  const gpuUnavailable = useStudio((s) => s.gpu.state === 'unavailable');
  return (
    <>
      <Header />
      <div className="layout">
        <StepList />
        <main className="content">
          <Notice />
          {gpuUnavailable && <NoWebGpu />}
          <ModelStep />
          <ModelSummaryCard />
          <DatasetStep />
          <ScoreStep />
          <PruneStep />
          <CheckStep />
          <DownloadStep />
        </main>
      </div>
    </>
  );
}
