// Merge, top-k selection: choose this pass's digit of the k-th largest importance value from the histogram
// (walking bins from the largest), narrow `remaining` to the rank within that bin, and clear the histogram
// for the next pass. One thread: 256 bins.
// Write semantics: `state` `=` (prefix, remaining, threshold updated); `histogram` `=` 0.

struct SelectParams {
  shift: u32,
}

struct SelectState {
  prefix: u32,
  remaining: u32,
  threshold: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read_write> state: SelectState;
@group(0) @binding(1) var<storage, read_write> histogram: array<u32, 256>; // (256)
@group(0) @binding(2) var<uniform> p: SelectParams;

@compute @workgroup_size(1)
fn mergeSelectDigit() {
  var remaining = state.remaining;
  var digit = 0u;
  for (var b = 255i; b >= 0i; b--) {
    let c = histogram[b];
    if (c >= remaining) {
      digit = u32(b);
      break;
    }
    remaining -= c;
  }
  state.prefix = state.prefix | (digit << p.shift);
  state.remaining = remaining;
  state.threshold = state.prefix;
  for (var b = 0u; b < 256u; b++) {
    histogram[b] = 0u;
  }
}
