// The element type W of the weight a kernel reads (matmul's b, the embedding table), prepended to the kernel's own
// file by the kernel library: f32 here, f16 in weights_f16.wgsl. Kernels read weights as f32(w[i]) and accumulate in f32.
alias W = f32;
