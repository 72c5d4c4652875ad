// Vitest global setup of the gpu-f16 tier: says once, up front, when the f16 tests will skip and why
// (each skipped test carries the reason too, shown by --reporter=verbose).
import { lavapipeMissing } from './lavapipe';

export default function announceLavapipe(): void {
  const missing = lavapipeMissing();
  if (missing) console.warn(`gpu-f16: ${missing}; the f16 tests skip unless the adapter has shader-f16.`);
}
