// LinearForward and LinearBackward with BF16 weights: the forward against a
// float64 product of the rounded operands, row invariance through the
// activation rounding, and the backward against the float32 backward of the
// same values (which it must equal bit for bit: dX through W widened exactly,
// dW from the rounded rows).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "models/dtype.h"
#include "models/ops/linear.h"
#include "models/ops/op_test_util.h"
#include "models/test_util.h"

namespace rlrt {
namespace {

using testing::RandomVector;

std::vector<uint16_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = F32ToBf16(v[i]);
  return out;
}

std::vector<float> Widen(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Bf16ToF32(v[i]);
  return out;
}

std::vector<float> Rounded(const std::vector<float>& v) {
  return Widen(ToBf16(v));
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(LinearBf16Test, ForwardIsTheProductOfTheRoundedOperands) {
  const int64_t t = 7, k = 77, n = 45;  // Tails in every dimension.
  const std::vector<float> x = RandomVector(t * k, 11);
  const std::vector<uint16_t> w = ToBf16(RandomVector(n * k, 12));
  const std::vector<float> b = RandomVector(n, 13);
  const std::vector<float> xr = Rounded(x), wf = Widen(w);
  std::vector<float> first;
  for (int workers : {0, 1, 3}) {
    auto mesh = workers > 0 ? testing::MakeMesh(workers) : nullptr;
    std::vector<float> y(t * n, -5.0f);
    LinearArgs a{x.data(), t, k,       MatrixRef::Bf16(w.data()),
                 b.data(), n, y.data()};
    ASSERT_TRUE(LinearForward(a, mesh.get()).ok());
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        // Products of BF16 values are exact in float64; the float32
        // accumulation errs by at most k ulps of the magnitude sum.
        double exact = b[c], magnitude = std::fabs(b[c]);
        for (int64_t i = 0; i < k; ++i) {
          const double p = double(xr[r * k + i]) * wf[c * k + i];
          exact += p;
          magnitude += std::fabs(p);
        }
        EXPECT_NEAR(y[r * n + c], exact, (k + 2) * 0x1p-24 * magnitude)
            << r << "," << c;
      }
    }
    if (first.empty()) first = y;
    EXPECT_TRUE(SameBits(y, first)) << workers << " workers";
  }
}

TEST(LinearBf16Test, RowsDoNotDependOnTheirBatch) {
  const int64_t t = 9, k = 64, n = 40;
  const std::vector<float> x = RandomVector(t * k, 21);
  const std::vector<uint16_t> w = ToBf16(RandomVector(n * k, 22));
  auto mesh = testing::MakeMesh(2);
  std::vector<float> all(t * n);
  ASSERT_TRUE(LinearForward({x.data(), t, k, MatrixRef::Bf16(w.data()), nullptr,
                             n, all.data()},
                            mesh.get())
                  .ok());
  for (int64_t r = 0; r < t; ++r) {
    std::vector<float> one(n);
    ASSERT_TRUE(
        LinearForward({x.data() + r * k, 1, k, MatrixRef::Bf16(w.data()),
                       nullptr, n, one.data()},
                      nullptr)
            .ok());
    EXPECT_EQ(std::memcmp(one.data(), all.data() + r * n, n * 4), 0) << r;
  }
}

TEST(LinearBf16Test, Float32BackwardEqualsTheFloat32BackwardOfTheSameValues) {
  const int64_t t = 6, k = 70, n = 33;
  const std::vector<float> x = RandomVector(t * k, 31);
  const std::vector<uint16_t> w = ToBf16(RandomVector(n * k, 32));
  const std::vector<float> dy = RandomVector(t * n, 33);
  const std::vector<float> xr = Rounded(x), wf = Widen(w);
  // Float32 reference: W widened, x already rounded.
  std::vector<float> dx_ref(t * k), dw_ref(n * k, 0.25f), db_ref(n, 0.5f);
  ASSERT_TRUE(LinearBackward({.x = xr.data(),
                              .weight = wf.data(),
                              .dy = dy.data(),
                              .rows = t,
                              .in = k,
                              .out = n,
                              .dx = dx_ref.data(),
                              .dweight = dw_ref.data(),
                              .dbias = db_ref.data()},
                             nullptr)
                  .ok());
  for (int workers : {0, 1, 2, 3}) {
    auto mesh = workers > 0 ? testing::MakeMesh(workers) : nullptr;
    std::vector<float> dx(t * k), dw(n * k, 0.25f), db(n, 0.5f);
    ASSERT_TRUE(LinearBackward({.x = x.data(),
                                .weight = MatrixRef::Bf16(w.data()),
                                .dy = dy.data(),
                                .rows = t,
                                .in = k,
                                .out = n,
                                .dx = dx.data(),
                                .dweight = dw.data(),
                                .dbias = db.data(),
                                .bf16_products = false},
                               mesh.get())
                    .ok());
    EXPECT_TRUE(SameBits(dx, dx_ref)) << workers << " workers";
    EXPECT_TRUE(SameBits(dw, dw_ref)) << workers << " workers";
    EXPECT_TRUE(SameBits(db, db_ref)) << workers << " workers";
  }
}

// The BF16 products: dX and dW are the products of dy rounded to BF16 with
// W and with x rounded, within float32 accumulation of float64's exact
// products; db is the float32 column sum of dy as is; and the bits do not
// depend on the worker count. Accumulating into dx adds the same product.
TEST(LinearBf16Test, Bf16BackwardIsTheProductOfTheRoundedOperands) {
  // Odd inner sizes and partial tiles; dy large enough (t * n > 2^16) for
  // its rounding to be split across the workers.
  const int64_t t = 65, k = 70, n = 1031;
  const std::vector<float> x = RandomVector(t * k, 41);
  const std::vector<uint16_t> w = ToBf16(RandomVector(n * k, 42));
  const std::vector<float> dy = RandomVector(t * n, 43);
  const std::vector<float> xr = Rounded(x), wf = Widen(w), dyr = Rounded(dy);
  const double eps = std::numeric_limits<float>::epsilon();
  const LinearBackwardArgs operands{.x = x.data(),
                                    .weight = MatrixRef::Bf16(w.data()),
                                    .dy = dy.data(),
                                    .rows = t,
                                    .in = k,
                                    .out = n};
  std::vector<float> first_dx, first_dw;
  for (int workers : {0, 1, 3}) {
    auto mesh = workers > 0 ? testing::MakeMesh(workers) : nullptr;
    std::vector<float> dx(t * k), dw(n * k, 0.25f), db(n, 0.5f);
    LinearBackwardArgs args = operands;
    args.dx = dx.data();
    args.dweight = dw.data();
    args.dbias = db.data();
    ASSERT_TRUE(LinearBackward(args, mesh.get()).ok());
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t c = 0; c < k; ++c) {
        double exact = 0, magnitude = 0;
        for (int64_t o = 0; o < n; ++o) {
          const double term = double(dyr[r * n + o]) * wf[o * k + c];
          exact += term;
          magnitude += std::fabs(term);
        }
        ASSERT_NEAR(dx[r * k + c], exact, magnitude * 260 * eps) << r << c;
      }
    }
    for (int64_t o = 0; o < n; ++o) {
      double column_sum = 0.5;
      for (int64_t r = 0; r < t; ++r) column_sum += dy[r * n + o];
      ASSERT_NEAR(db[o], column_sum, 1e-5) << o;
      for (int64_t c = 0; c < k; ++c) {
        double exact = 0.25, magnitude = 0.25;
        for (int64_t r = 0; r < t; ++r) {
          const double term = double(dyr[r * n + o]) * xr[r * k + c];
          exact += term;
          magnitude += std::fabs(term);
        }
        ASSERT_NEAR(dw[o * k + c], exact, magnitude * 260 * eps) << o << c;
      }
    }
    if (first_dx.empty()) {
      first_dx = dx;
      first_dw = dw;
    } else {
      EXPECT_TRUE(SameBits(dx, first_dx)) << workers << " workers";
      EXPECT_TRUE(SameBits(dw, first_dw)) << workers << " workers";
    }
  }
  // dx += the same product, onto what was there.
  std::vector<float> dx(t * k, 1.0f);
  LinearBackwardArgs accumulate = operands;
  accumulate.dx = dx.data();
  accumulate.accumulate_dx = true;
  ASSERT_TRUE(LinearBackward(accumulate, nullptr).ok());
  for (size_t i = 0; i < dx.size(); ++i)
    ASSERT_NEAR(dx[i], 1.0f + first_dx[i], 1e-5 * (1 + std::fabs(dx[i])));
  // Rounding dy is what changes: the float32 products of the same call
  // differ from these (the test would not see a path that skipped it).
  std::vector<float> dx32(t * k);
  LinearBackwardArgs float32_products = operands;
  float32_products.dx = dx32.data();
  float32_products.bf16_products = false;
  ASSERT_TRUE(LinearBackward(float32_products, nullptr).ok());
  EXPECT_GT(testing::MaxAbsDiff(dx32.data(), testing::ToDouble(first_dx).data(),
                                dx32.size()),
            1e-3);
}

TEST(LinearBf16Test, RefusesWhatItCannotCompute) {
  const std::vector<float> x(4, 1.0f);
  const std::vector<uint16_t> w(8, F32ToBf16(1.0f));
  std::vector<float> y(2);
  LinearArgs blas{x.data(), 1, 4,       MatrixRef::Bf16(w.data()),
                  nullptr,  2, y.data()};
  blas.kernel = MatmulKernel::kOpenBlas;
  const Status s = LinearForward(blas, nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("OpenBLAS"), std::string::npos) << s;
  MatrixRef f16 = MatrixRef::Bf16(w.data());
  f16.dtype = DType::kF16;
  EXPECT_FALSE(
      LinearForward({x.data(), 1, 4, f16, nullptr, 2, y.data()}, nullptr).ok());
  EXPECT_FALSE(LinearBackward({.x = x.data(),
                               .weight = f16,
                               .dy = y.data(),
                               .rows = 1,
                               .in = 4,
                               .out = 2,
                               .dx = y.data()},
                              nullptr)
                   .ok());
}

}  // namespace
}  // namespace rlrt
