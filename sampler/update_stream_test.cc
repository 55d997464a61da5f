// Streamed weight updates on a running engine: a stream staged and applied
// at commit equals the checkpoint it carries; nothing shows before commit;
// every broken stream (missing, duplicated, reordered, corrupted chunks, a
// bad hash, a short commit, an abandoned or superseded stream) leaves the
// old weights serving and the stream's staging dropped.
#include "sampler/update_stream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "models/forward/model_source.h"
#include "models/hash.h"
#include "models/leaf_checksum.h"
#include "models/leaf_init.h"
#include "sampler/engine_test_util.h"

namespace rlrt {
namespace {

using testing::GoldenContinuation;
using testing::GreedyText;
using testing::MakeEngine;
using testing::MakeMesh;
using testing::StoriesOptions;

// A stream's messages written out field by field from the proto's
// definition, independently of the trainer's writer: every leaf's bytes
// appended in order, cut every `chunk_bytes`.
struct HandStream {
  proto::UpdateStreamBegin begin;
  std::vector<proto::UpdateChunk> chunks;
  proto::UpdateStreamCommit commit;
};

HandStream HandBuiltStream(const ParamLeaves& src, uint64_t version,
                           size_t chunk_bytes) {
  std::string payload;
  for (size_t i = 0; i < src.size(); ++i)
    payload.append(reinterpret_cast<const char*>(src.data(i)), src.bytes(i));
  HandStream s;
  for (size_t at = 0; at < payload.size(); at += chunk_bytes) {
    proto::UpdateChunk& c = s.chunks.emplace_back();
    c.set_version(version);
    c.set_index(static_cast<uint32_t>(s.chunks.size() - 1));
    c.set_offset(at);
    c.set_data(payload.substr(at, chunk_bytes));
    c.set_data_hash(HashBytes(c.data().data(), c.data().size(), 0));
  }
  s.begin.set_version(version);
  s.begin.set_structure_fingerprint(src.fingerprint());
  s.begin.set_total_bytes(payload.size());
  s.begin.set_num_chunks(static_cast<uint32_t>(s.chunks.size()));
  s.begin.set_expected_content_hash(ContentHash(src));
  s.begin.set_flush_cache(true);
  s.commit.set_version(version);
  s.commit.set_num_chunks(static_cast<uint32_t>(s.chunks.size()));
  return s;
}

class UpdateStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mesh_ = MakeMesh(2);
    engine_ = MakeEngine(StoriesOptions("dummy"), mesh_.get());
    ASSERT_NE(engine_, nullptr);
    checkpoint_ = std::make_unique<LoadedModel>(testing::LoadStories());
    dummy_hash_ = engine_->WeightsChecksum()->content_hash;
  }

  std::vector<int32_t> Greedy() {
    auto r = engine_->Generate(
        GreedyText("Once upon a time", GoldenContinuation().size()));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->samples[0].token_ids : std::vector<int32_t>{};
  }
  uint64_t EngineHash() { return engine_->WeightsChecksum()->content_hash; }
  void ExpectOldWeightsServing() {
    EXPECT_EQ(EngineHash(), dummy_hash_);
    EXPECT_EQ(engine_->Stats().weight_version, 0u);
  }
  // About 40 chunks, most of them starting and ending inside a leaf.
  HandStream Stream(uint64_t version) {
    return HandBuiltStream(checkpoint_->weights, version,
                           checkpoint_->weights.total_bytes() / 40 + 13);
  }

  std::unique_ptr<Mesh> mesh_;
  std::unique_ptr<SamplerEngine> engine_;
  std::unique_ptr<LoadedModel> checkpoint_;
  uint64_t dummy_hash_ = 0;
};

TEST_F(UpdateStreamTest,
       CommittedStreamEqualsTheCheckpointAndNothingShowsBefore) {
  UpdateStreamReceiver receiver(engine_.get(), mesh_.get());
  const EngineBuffers before = engine_->buffers();
  const std::vector<int32_t> dummy_tokens = Greedy();
  HandStream s = Stream(1);
  ASSERT_GT(s.chunks.size(), 30u);
  ASSERT_TRUE(receiver.Begin(s.begin).ok());
  for (const proto::UpdateChunk& c : s.chunks) {
    ASSERT_TRUE(receiver.AddChunk(c).ok());
    // Staged, not served.
    if (c.index() % 10 == 0) {
      EXPECT_EQ(Greedy(), dummy_tokens);
    }
  }
  ExpectOldWeightsServing();
  EXPECT_TRUE(receiver.status().active);
  EXPECT_EQ(receiver.status().bytes_received, s.begin.total_bytes());

  auto applied = receiver.Commit(s.commit);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version, 1u);
  EXPECT_EQ(applied->content_hash, ContentHash(checkpoint_->weights));
  EXPECT_EQ(EngineHash(), ContentHash(checkpoint_->weights));
  EXPECT_EQ(Greedy(), GoldenContinuation());
  const EngineBuffers after = engine_->buffers();
  EXPECT_EQ(after.weights, before.weights);
  EXPECT_EQ(after.kv_cache, before.kv_cache);
  const UpdateStreamStatus status = receiver.status();
  EXPECT_FALSE(status.active);
  EXPECT_EQ(status.streams_committed, 1);
  EXPECT_EQ(status.streams_failed, 0);
}

TEST_F(UpdateStreamTest, SerializedChunksWorkAndMalformedOnesAreRefusedAlone) {
  UpdateStreamReceiver receiver(engine_.get(), nullptr);
  HandStream s = Stream(2);
  ASSERT_TRUE(receiver.Begin(s.begin).ok());
  EXPECT_EQ(receiver.AddSerializedChunk("\xff\xff garbage").code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(receiver.status().active);  // A stray message breaks nothing.
  for (const proto::UpdateChunk& c : s.chunks)
    ASSERT_TRUE(receiver.AddSerializedChunk(c.SerializeAsString()).ok());
  ASSERT_TRUE(receiver.Commit(s.commit).ok());
  EXPECT_EQ(EngineHash(), ContentHash(checkpoint_->weights));
}

// Each way a stream can break, applied to a fresh stream: the failure is
// reported, the stream is gone, and the old weights keep serving.
TEST_F(UpdateStreamTest, BrokenStreamsLeaveTheOldWeightsServing) {
  struct Case {
    std::string name;
    StatusCode code;
    std::function<Status(UpdateStreamReceiver&, HandStream&)> run;
    // Streams weights holding a NaN, with every hash right.
    bool nan_source = false;
  };
  auto bad = ParamLeaves::Allocate(checkpoint_->weights.specs());
  ASSERT_TRUE(bad.ok());
  std::memcpy(bad->data(0), checkpoint_->weights.data(0),
              checkpoint_->weights.bytes(0));
  bad->F32(0)[3] = std::nanf("");
  auto send = [](UpdateStreamReceiver& r, HandStream& s,
                 const std::vector<size_t>& order) -> Status {
    for (size_t i : order) RETURN_IF_ERROR(r.AddChunk(s.chunks[i]));
    return r.Commit(s.commit).status();
  };
  auto all_but = [](size_t n, size_t skip) {
    std::vector<size_t> order;
    for (size_t i = 0; i < n; ++i)
      if (i != skip) order.push_back(i);
    return order;
  };
  auto in_order = [](size_t n) {
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    return order;
  };
  const std::vector<Case> cases = {
      {"missing chunk", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) {
         return send(r, s, all_but(s.chunks.size(), 5));
       }},
      {"missing last chunk", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) {
         return send(r, s, all_but(s.chunks.size(), s.chunks.size() - 1));
       }},
      {"duplicated chunk", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) {
         std::vector<size_t> order = in_order(s.chunks.size());
         order.insert(order.begin() + 4, 3);
         return send(r, s, order);
       }},
      {"reordered chunks", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) {
         std::vector<size_t> order = in_order(s.chunks.size());
         std::swap(order[6], order[7]);
         return send(r, s, order);
       }},
      {"corrupted in transit", StatusCode::kDataLoss,
       [&](auto& r, auto& s) {
         (*s.chunks[9].mutable_data())[100] ^= 0x10;
         return send(r, s, in_order(s.chunks.size()));
       }},
      {"corrupted before hashing (whole-payload hash)", StatusCode::kDataLoss,
       [&](auto& r, auto& s) {
         proto::UpdateChunk& c = s.chunks[9];
         (*c.mutable_data())[100] ^= 0x10;
         c.set_data_hash(HashBytes(c.data().data(), c.data().size(), 0));
         return send(r, s, in_order(s.chunks.size()));
       }},
      {"chunk at the wrong offset", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) {
         s.chunks[2].set_offset(s.chunks[2].offset() + 4);
         return send(r, s, in_order(s.chunks.size()));
       }},
      {"chunk past the end", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) {
         s.chunks.back().mutable_data()->append("xxxx");
         proto::UpdateChunk& c = s.chunks.back();
         c.set_data_hash(HashBytes(c.data().data(), c.data().size(), 0));
         return send(r, s, in_order(s.chunks.size()));
       }},
      {"commit counting other chunks", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) {
         s.commit.set_num_chunks(s.commit.num_chunks() + 1);
         return send(r, s, in_order(s.chunks.size()));
       }},
      {"NaN in a well-hashed payload", StatusCode::kInvalidArgument,
       [&](auto& r, auto& s) { return send(r, s, in_order(s.chunks.size())); },
       /*nan_source=*/true},
  };
  UpdateStreamReceiver receiver(engine_.get(), mesh_.get());
  int64_t failed = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    HandStream s = c.nan_source ? HandBuiltStream(*bad, 7, 4099) : Stream(7);
    ASSERT_TRUE(receiver.Begin(s.begin).ok());
    const Status status = c.run(receiver, s);
    EXPECT_EQ(status.code(), c.code) << status;
    const UpdateStreamStatus st = receiver.status();
    EXPECT_FALSE(st.active);
    EXPECT_EQ(st.streams_failed, ++failed);
    EXPECT_FALSE(st.last_error.empty());
    // Nothing more can land on the broken stream.
    EXPECT_EQ(receiver.AddChunk(s.chunks[0]).code(),
              StatusCode::kFailedPrecondition);
    EXPECT_EQ(receiver.Commit(s.commit).status().code(),
              StatusCode::kFailedPrecondition);
    ExpectOldWeightsServing();
  }
  // And a good stream still goes through afterwards.
  HandStream s = Stream(7);
  ASSERT_TRUE(receiver.Begin(s.begin).ok());
  for (const proto::UpdateChunk& c : s.chunks)
    ASSERT_TRUE(receiver.AddChunk(c).ok());
  ASSERT_TRUE(receiver.Commit(s.commit).ok());
  EXPECT_EQ(EngineHash(), ContentHash(checkpoint_->weights));
}

TEST_F(UpdateStreamTest, BadBeginsAreRefusedAndStartNothing) {
  UpdateStreamReceiver receiver(engine_.get(), nullptr);
  auto refused = [&](proto::UpdateStreamBegin b, StatusCode code) {
    EXPECT_EQ(receiver.Begin(b).code(), code) << b.ShortDebugString();
    EXPECT_FALSE(receiver.status().active);
  };
  const proto::UpdateStreamBegin good = Stream(3).begin;
  proto::UpdateStreamBegin b = good;
  b.set_version(0);
  refused(b, StatusCode::kFailedPrecondition);
  b = good;
  b.set_version(uint64_t{1} << 63);
  refused(b, StatusCode::kInvalidArgument);
  b = good;
  b.set_structure_fingerprint(good.structure_fingerprint() ^ 1);
  refused(b, StatusCode::kInvalidArgument);
  b = good;
  b.set_total_bytes(good.total_bytes() + 4);
  refused(b, StatusCode::kInvalidArgument);
  b = good;
  b.set_num_chunks(0);
  refused(b, StatusCode::kInvalidArgument);
  b = good;
  b.set_num_chunks(static_cast<uint32_t>(-1));
  refused(b, StatusCode::kInvalidArgument);
  EXPECT_EQ(receiver.status().streams_failed, 0);
}

TEST_F(UpdateStreamTest, NewerStreamSupersedesAndOlderOnesAreRefused) {
  UpdateStreamReceiver receiver(engine_.get(), mesh_.get());
  HandStream v1 = Stream(1);
  HandStream v2 = Stream(2);
  ASSERT_TRUE(receiver.Begin(v1.begin).ok());
  ASSERT_TRUE(receiver.AddChunk(v1.chunks[0]).ok());
  ASSERT_TRUE(receiver.Begin(v2.begin).ok());  // v1 is dropped.
  EXPECT_EQ(receiver.status().streams_failed, 1);
  EXPECT_NE(receiver.status().last_error.find("superseded"), std::string::npos);
  // v1's stragglers are refused without harming v2.
  EXPECT_EQ(receiver.AddChunk(v1.chunks[1]).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(receiver.Begin(v1.begin).code(), StatusCode::kFailedPrecondition);
  for (const proto::UpdateChunk& c : v2.chunks)
    ASSERT_TRUE(receiver.AddChunk(c).ok());
  EXPECT_EQ(receiver.Commit(v1.commit).status().code(),
            StatusCode::kFailedPrecondition);
  auto applied = receiver.Commit(v2.commit);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(engine_->Stats().weight_version, 2u);
  EXPECT_EQ(EngineHash(), ContentHash(checkpoint_->weights));
  // A sender giving up.
  HandStream v3 = Stream(3);
  ASSERT_TRUE(receiver.Begin(v3.begin).ok());
  EXPECT_TRUE(receiver.Abort(3).ok());
  EXPECT_FALSE(receiver.status().active);
  EXPECT_EQ(receiver.Abort(3).code(), StatusCode::kNotFound);
}

TEST_F(UpdateStreamTest, AbandonedStreamIsDroppedAfterItsIdleTimeout) {
  UpdateStreamReceiver receiver(
      engine_.get(), nullptr, {.idle_timeout = std::chrono::milliseconds(100)});
  HandStream s = Stream(4);
  ASSERT_TRUE(receiver.Begin(s.begin).ok());
  ASSERT_TRUE(receiver.AddChunk(s.chunks[0]).ok());
  // Activity keeps it alive past one timeout...
  for (int i = 1; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(receiver.AddChunk(s.chunks[i]).ok());
  }
  EXPECT_TRUE(receiver.status().active);
  // ...silence does not.
  const auto start = std::chrono::steady_clock::now();
  while (receiver.status().active &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const UpdateStreamStatus st = receiver.status();
  EXPECT_FALSE(st.active);
  EXPECT_EQ(st.streams_failed, 1);
  EXPECT_NE(st.last_error.find("abandoned"), std::string::npos)
      << st.last_error;
  EXPECT_EQ(receiver.AddChunk(s.chunks[4]).code(),
            StatusCode::kFailedPrecondition);
  ExpectOldWeightsServing();
  // The same version may start over.
  ASSERT_TRUE(receiver.Begin(s.begin).ok());
  for (const proto::UpdateChunk& c : s.chunks)
    ASSERT_TRUE(receiver.AddChunk(c).ok());
  ASSERT_TRUE(receiver.Commit(s.commit).ok());
  EXPECT_EQ(engine_->Stats().weight_version, 4u);
}

// Generation runs while a stream is staged; every token of every sample
// comes from one of the two versions, and a request that starts after the
// commit sees only the new one.
TEST_F(UpdateStreamTest, GenerationGoesOnWhileAStreamIsStaged) {
  UpdateStreamReceiver receiver(engine_.get(), mesh_.get());
  HandStream s = Stream(5);
  std::atomic<bool> done{false};
  std::vector<uint64_t> versions;
  std::thread generator([&] {
    while (!done.load()) {
      auto r = engine_->Generate(GreedyText("Once upon a time", 8));
      ASSERT_TRUE(r.ok()) << r.status();
      for (uint64_t v : r->samples[0].weight_versions) versions.push_back(v);
    }
  });
  ASSERT_TRUE(receiver.Begin(s.begin).ok());
  for (const proto::UpdateChunk& c : s.chunks)
    ASSERT_TRUE(receiver.AddChunk(c).ok());
  ASSERT_TRUE(receiver.Commit(s.commit).ok());
  done = true;
  generator.join();
  for (uint64_t v : versions) EXPECT_TRUE(v == 0 || v == 5) << v;
  auto after = engine_->Generate(GreedyText("Once upon a time", 4));
  ASSERT_TRUE(after.ok());
  for (uint64_t v : after->samples[0].weight_versions) EXPECT_EQ(v, 5u);
}

}  // namespace
}  // namespace rlrt
