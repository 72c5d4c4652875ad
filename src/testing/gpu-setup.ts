// Vitest setup for the gpu tier: WebGPU in Node through Dawn (the `webgpu` package) on SwiftShader.
import { configureNodeVulkan } from '../gpu/node';

configureNodeVulkan();
