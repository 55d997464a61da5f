// Sums down the rows of a matrix, per column, for weight and bias gradients:
// a reduction over tokens that may be thousands long, so it runs in double,
// in row order, each column within one call: the same bits however callers
// split the columns among workers.
#ifndef RLRT_MODELS_OPS_COLUMN_SUMS_H_
#define RLRT_MODELS_OPS_COLUMN_SUMS_H_

#include <algorithm>
#include <cstdint>

namespace rlrt {

// out[c] += sum_{r < rows} term(r, c) for c in [c0, c1), with term
// returning double. Columns go in chunks so each row's slice is read
// contiguously and the partial sums stay in registers.
template <typename Term>
void AddColumnSums(int64_t rows, int64_t c0, int64_t c1, Term term,
                   float* out) {
  constexpr int64_t kChunk = 32;
  for (int64_t b0 = c0; b0 < c1; b0 += kChunk) {
    const int64_t width = std::min(kChunk, c1 - b0);
    double sums[kChunk] = {};
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < width; ++c) sums[c] += term(r, b0 + c);
    }
    for (int64_t c = 0; c < width; ++c)
      out[b0 + c] += static_cast<float>(sums[c]);
  }
}

}  // namespace rlrt

#endif  // RLRT_MODELS_OPS_COLUMN_SUMS_H_
