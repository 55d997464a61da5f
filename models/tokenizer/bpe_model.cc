#include "models/tokenizer/bpe_model.h"

#include <cstdio>
#include <limits>
#include <queue>

#include "models/tokenizer/byte_level.h"
#include "models/tokenizer/utf8.h"

namespace rlrt::tokenizer_internal {
namespace {

constexpr std::string_view kBpeModelWhere = "tokenizer.json model";

std::string ByteFallbackToken(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
  return buf;
}

// Appends rather than concatenates: GCC 12 gives a false -Wrestrict warning
// for "literal" + std::string.
std::string Quote(std::string_view s) {
  std::string quoted;
  quoted.reserve(s.size() + 2);
  quoted.push_back('"');
  quoted.append(s);
  quoted.push_back('"');
  return quoted;
}

StatusOr<TokenMap> ParseVocab(const Json& model) {
  const Json* vocab = Find(model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return InvalidArgumentError(std::string(kBpeModelWhere) +
                                ".vocab must be an object {token: id}");
  }
  TokenMap map;
  map.reserve(vocab->size());
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer()) {
      return InvalidArgumentError(std::string(kBpeModelWhere) + ".vocab[" +
                                  Quote(token) + "] must be an integer id");
    }
    const int64_t value = id.is_number_unsigned()
                              ? static_cast<int64_t>(std::min<uint64_t>(
                                    id.get<uint64_t>(), INT64_MAX))
                              : id.get<int64_t>();
    if (value < 0 || value >= std::numeric_limits<int32_t>::max()) {
      return OutOfRangeError(std::string(kBpeModelWhere) + ".vocab[" +
                             Quote(token) + "] = " + std::to_string(value) +
                             " is not a valid id");
    }
    map.emplace(token, static_cast<int32_t>(value));
  }
  return map;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ParseMerges(
    const Json& model) {
  const Json* merges = Find(model, "merges");
  std::vector<std::pair<std::string, std::string>> out;
  if (merges == nullptr || merges->is_null()) return out;
  if (!merges->is_array()) {
    return InvalidArgumentError(std::string(kBpeModelWhere) +
                                ".merges must be a list");
  }
  out.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    const std::string where =
        std::string(kBpeModelWhere) + ".merges[" + std::to_string(i) + "]";
    if (m.is_string()) {
      // The older "a b" form; tokens never contain a space here, since a
      // space is what separates them.
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) {
        return InvalidArgumentError(where + " = " + Quote(s) +
                                    " is not of the form \"a b\"");
      }
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return InvalidArgumentError(where + " must be \"a b\" or [\"a\", \"b\"]");
    }
  }
  return out;
}

// Options that change what BPE does but that this implementation lacks.
Status CheckUnsupported(const Json& model) {
  const Json* dropout = Find(model, "dropout");
  if (dropout != nullptr && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return UnimplementedError(std::string(kBpeModelWhere) +
                              ": BPE dropout is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* value = Find(model, key);
    if (value == nullptr || value->is_null()) continue;
    if (!value->is_string()) {
      return InvalidArgumentError(std::string(kBpeModelWhere) + "." + key +
                                  " must be a string");
    }
    if (!value->get_ref<const std::string&>().empty()) {
      return UnimplementedError(std::string(kBpeModelWhere) + "." + key +
                                " is not supported");
    }
  }
  return OkStatus();
}

// One symbol of the piece being merged, in a doubly linked list.
struct Symbol {
  int32_t id;
  int32_t prev;  // -1: none.
  int32_t next;  // -1: none.
  bool alive;
};

// A possible merge of the symbol at `pos` with its right neighbour.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // Lowest rank first, then leftmost, as priority_queue pops the largest.
  bool operator<(const Candidate& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

}  // namespace

StatusOr<BpeModel> BpeModel::Create(
    TokenMap vocab,
    const std::vector<std::pair<std::string, std::string>>& merges,
    BpeConfig config) {
  BpeModel model;
  model.config_ = std::move(config);
  model.vocab_ = std::move(vocab);
  {
    std::unordered_map<int32_t, const std::string*> seen;
    seen.reserve(model.vocab_.size());
    for (const auto& [token, id] : model.vocab_) {
      if (id < 0) {
        return OutOfRangeError(std::string(kBpeModelWhere) +
                               ": vocabulary id " + std::to_string(id) +
                               " is negative");
      }
      auto [it, inserted] = seen.emplace(id, &token);
      if (!inserted) {
        return InvalidArgumentError(std::string(kBpeModelWhere) +
                                    ": vocabulary id " + std::to_string(id) +
                                    " is used by both " + Quote(*it->second) +
                                    " and " + Quote(token));
      }
    }
  }
  auto id_of = [&](const std::string& token) -> std::optional<int32_t> {
    auto it = model.vocab_.find(token);
    if (it == model.vocab_.end()) return std::nullopt;
    return it->second;
  };

  model.merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    const std::string joined = a + b;
    const auto left = id_of(a);
    const auto right = id_of(b);
    const auto merged = id_of(joined);
    if (!left || !right || !merged) {
      const std::string& missing = !left ? a : !right ? b : joined;
      return InvalidArgumentError(std::string(kBpeModelWhere) + ".merges[" +
                                  std::to_string(i) + "] (" + Quote(a) + ", " +
                                  Quote(b) + ") refers to " + Quote(missing) +
                                  ", which is not in the vocabulary");
    }
    // A repeated pair takes the later rank, as in Hugging Face tokenizers.
    model.merges_[PairKey(*left, *right)] = {static_cast<int32_t>(i), *merged};
  }

  const BpeConfig& c = model.config_;
  if (!c.unk_token.empty()) {
    const auto unk = id_of(c.unk_token);
    if (!unk) {
      return InvalidArgumentError(std::string(kBpeModelWhere) + ": unk_token " +
                                  Quote(c.unk_token) +
                                  " is not in the vocabulary");
    }
    model.unk_id_ = *unk;
  }
  if (c.byte_level || c.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      const std::string token =
          c.byte_level ? std::string(ByteLevelChar(static_cast<uint8_t>(b)))
                       : ByteFallbackToken(static_cast<uint8_t>(b));
      const auto id = id_of(token);
      if (!id) {
        return InvalidArgumentError(
            std::string(kBpeModelWhere) + ": " +
            (c.byte_level ? "byte-level" : "byte_fallback") +
            " vocabulary lacks the token " + Quote(token) + " for byte " +
            std::to_string(b));
      }
      model.byte_ids_[b] = *id;
    }
  } else if (model.unk_id_ < 0) {
    return InvalidArgumentError(
        std::string(kBpeModelWhere) +
        ": the model can not represent every input (no byte-level "
        "pre-tokenizer, no byte_fallback and no unk_token)");
  }
  return model;
}

StatusOr<BpeModel> BpeModel::FromJson(const Json& model, bool byte_level) {
  if (!model.is_object()) {
    return InvalidArgumentError(std::string(kBpeModelWhere) +
                                " must be an object");
  }
  const Json* type = Find(model, "type");
  if (type == nullptr || !type->is_string()) {
    return InvalidArgumentError(std::string(kBpeModelWhere) +
                                ".type is missing (expected \"BPE\")");
  }
  if (type->get_ref<const std::string&>() != "BPE") {
    return UnimplementedError(
        std::string(kBpeModelWhere) + ": unsupported model type " +
        Quote(type->get_ref<const std::string&>()) + " (only BPE)");
  }
  RETURN_IF_ERROR(CheckUnsupported(model));
  BpeConfig config;
  config.byte_level = byte_level;
  ASSIGN_OR_RETURN(config.byte_fallback,
                   GetBoolOr(model, "byte_fallback", false, kBpeModelWhere));
  ASSIGN_OR_RETURN(config.fuse_unk,
                   GetBoolOr(model, "fuse_unk", false, kBpeModelWhere));
  ASSIGN_OR_RETURN(config.ignore_merges,
                   GetBoolOr(model, "ignore_merges", false, kBpeModelWhere));
  if (!IsAbsent(model, "unk_token")) {
    ASSIGN_OR_RETURN(config.unk_token,
                     GetString(model, "unk_token", kBpeModelWhere));
    if (config.unk_token.empty()) {
      return InvalidArgumentError(std::string(kBpeModelWhere) +
                                  ".unk_token is empty");
    }
  }
  ASSIGN_OR_RETURN(TokenMap vocab, ParseVocab(model));
  ASSIGN_OR_RETURN(auto merges, ParseMerges(model));
  return Create(std::move(vocab), merges, std::move(config));
}

const BpeModel::Merge* BpeModel::FindMerge(int32_t left, int32_t right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::InitialIds(std::string_view piece,
                          std::vector<int32_t>* ids) const {
  if (config_.byte_level) {
    for (char c : piece) ids->push_back(byte_ids_[static_cast<uint8_t>(c)]);
    return;
  }
  size_t i = 0;
  while (i < piece.size()) {
    // A byte that starts no valid character is treated like a character
    // missing from the vocabulary: it can only fall back to bytes or unk.
    const size_t valid = ValidCharLength(piece.substr(i));
    const size_t n = valid == 0 ? 1 : valid;
    const std::string_view ch = piece.substr(i, n);
    i += n;
    if (valid != 0) {
      auto it = vocab_.find(ch);
      if (it != vocab_.end()) {
        ids->push_back(it->second);
        continue;
      }
    }
    if (config_.byte_fallback) {
      for (char c : ch) ids->push_back(byte_ids_[static_cast<uint8_t>(c)]);
      continue;
    }
    if (config_.fuse_unk && !ids->empty() && ids->back() == unk_id_) continue;
    ids->push_back(unk_id_);
  }
}

void BpeModel::Encode(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  if (config_.ignore_merges) {
    auto it = config_.byte_level ? vocab_.find(ToByteLevel(piece))
                                 : vocab_.find(piece);
    if (it != vocab_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> ids;
  ids.reserve(piece.size());
  InitialIds(piece, &ids);
  if (ids.size() == 1) {
    out->push_back(ids[0]);
    return;
  }

  // A heap of candidate merges gives O(n log n) for long pieces, where a
  // rescan for the best pair after every merge would be quadratic.
  const int32_t n = static_cast<int32_t>(ids.size());
  std::vector<Symbol> symbols(n);
  std::vector<Candidate> storage;
  storage.reserve(n);
  std::priority_queue<Candidate> heap(std::less<Candidate>(),
                                      std::move(storage));
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1, true};
    if (i + 1 < n) {
      if (const Merge* m = FindMerge(ids[i], ids[i + 1])) {
        heap.push({m->rank, i, m->new_id});
      }
    }
  }
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Entries go stale when a neighbour merged first; the pair now there
    // must still be the one this entry was made for.
    const Merge* m = FindMerge(left.id, right.id);
    if (m == nullptr || m->rank != top.rank || m->new_id != top.new_id) {
      continue;
    }
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* p = FindMerge(symbols[left.prev].id, left.id)) {
        heap.push({p->rank, left.prev, p->new_id});
      }
    }
    if (left.next >= 0) {
      if (const Merge* p = FindMerge(left.id, symbols[left.next].id)) {
        heap.push({p->rank, top.pos, p->new_id});
      }
    }
  }
  // Symbol 0 is never removed: a merge keeps the left symbol.
  for (int32_t i = 0; i >= 0; i = symbols[i].next)
    out->push_back(symbols[i].id);
}

}  // namespace rlrt::tokenizer_internal
