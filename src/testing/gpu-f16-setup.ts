// Vitest setup for the gpu-f16 tier: Dawn on lavapipe (shader-f16) when scripts/ensure-lavapipe.mjs has provided it;
// otherwise the default driver (SwiftShader, no shader-f16), and the f16 tests skip with the reason.
import { configureNodeVulkan } from '../gpu/node';
import { useLavapipe } from './lavapipe';

useLavapipe();
configureNodeVulkan();
