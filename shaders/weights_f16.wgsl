enable f16;
// The element type W of the weight a kernel reads, stored as f16 (devices with shader-f16): see weights_f32.wgsl.
alias W = f16;
