#pragma once
// Statements over a batch of keys (outbox event ids, processed event ids): MySQL has no array
// parameters, so a batch is sent as fixed-size chunks, each with one prepared statement that takes
// kChunk keys. A shorter chunk repeats its last key, which matches (or inserts) the same row again
// and changes nothing: one prepared statement per kind, whatever the batch size.
#include <algorithm>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "adapters/mysql/pool.hpp"

namespace registrar::adapters::mysql {

inline constexpr std::size_t kChunk = 16;

// Calls each_chunk(params) for every chunk of `keys`: params starts with `head`, then add_row
// appends each key's parameters (kChunk keys, the last one repeated to fill the chunk).
template <class Key, class AddRow, class EachChunk>
void for_each_chunk(const std::vector<Param>& head, std::span<const Key> keys, AddRow&& add_row, EachChunk&& each_chunk) {
  for (std::size_t at = 0; at < keys.size(); at += kChunk) {
    std::vector<Param> params = head;
    for (std::size_t i = 0; i < kChunk; ++i) add_row(params, keys[std::min(at + i, keys.size() - 1)]);
    each_chunk(params);
  }
}

// Runs write(Connection&), which sends one statement per chunk of a batch of `count` keys, as one
// unit. A batch of one chunk is one statement, run with MysqlPool::atomic (one round trip instead
// of three; write must be idempotent, as it runs again if a pooled connection died after it may
// have been applied); a larger one runs in one transaction.
template <class Write>
void write_batch(MysqlPool& pool, std::size_t count, Write&& write) {
  if (count <= kChunk) {
    pool.atomic([&](Connection& c, bool /*repeat*/) { write(c); });
  } else {
    pool.transact([&](Connection& c) { write(c); });
  }
}

}  // namespace registrar::adapters::mysql
