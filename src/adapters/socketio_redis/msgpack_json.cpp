#include "adapters/socketio_redis/msgpack_json.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "domain/credentials.hpp"  // utf8_length

namespace registrar::adapters::socketio_redis {

namespace json = boost::json;

namespace {

// What an extension value became: a JSON value, or notepack's `undefined` (kept apart so that a
// map can omit its key, as JSON.stringify does).
struct Converted {
  json::value value;
  bool undefined = false;
};

std::uint32_t be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) | std::uint32_t{u[3]};
}

class Converter {
 public:
  explicit Converter(const MsgpackLimits& limits) : limits_(limits) {}

  Converted convert(const msgpack::object& o) {
    switch (o.type) {
      case msgpack::type::NIL: return {nullptr};
      case msgpack::type::BOOLEAN: return {o.via.boolean};
      case msgpack::type::POSITIVE_INTEGER:
        if (o.via.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          return {static_cast<std::int64_t>(o.via.u64)};
        return {o.via.u64};
      case msgpack::type::NEGATIVE_INTEGER: return {o.via.i64};
      case msgpack::type::FLOAT32:
      case msgpack::type::FLOAT64:
        // JSON.stringify writes NaN and ±Infinity as null.
        if (!std::isfinite(o.via.f64)) return {nullptr};
        return {o.via.f64};
      case msgpack::type::STR: return {string_of(o.via.str.ptr, o.via.str.size)};
      case msgpack::type::BIN: return {binary(std::string(o.via.bin.ptr, o.via.bin.size))};
      case msgpack::type::ARRAY: {
        json::array a;
        a.reserve(o.via.array.size);
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
          Converted c = convert(o.via.array.ptr[i]);
          a.push_back(c.undefined ? json::value(nullptr) : std::move(c.value));
        }
        return {std::move(a)};
      }
      case msgpack::type::MAP: {
        json::object m;
        m.reserve(o.via.map.size);
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
          const msgpack::object_kv& kv = o.via.map.ptr[i];
          std::string key;
          if (kv.key.type == msgpack::type::STR) {
            const json::string k = string_of(kv.key.via.str.ptr, kv.key.via.str.size);
            key.assign(k.data(), k.size());
          }
          else if (kv.key.type == msgpack::type::POSITIVE_INTEGER) key = std::to_string(kv.key.via.u64);
          else if (kv.key.type == msgpack::type::NEGATIVE_INTEGER) key = std::to_string(kv.key.via.i64);
          else throw MsgpackError("a map key that is neither a string nor an integer");
          Converted c = convert(kv.val);
          if (c.undefined) continue;
          m[key] = std::move(c.value);  // a repeated key: the last one wins, as in notepack
        }
        return {std::move(m)};
      }
      case msgpack::type::EXT: return extension(o.via.ext.type(), o.via.ext.data(), o.via.ext.size);
    }
    throw MsgpackError("unknown msgpack type");
  }

  std::vector<std::string> take_buffers() { return std::move(buffers_); }

 private:
  json::string string_of(const char* p, std::uint32_t n) {
    std::string_view s(p, n);
    if (!domain::utf8_length(s)) throw MsgpackError("a string that is not valid UTF-8");
    return json::string(s);
  }

  json::value binary(std::string bytes) {
    if (buffers_.size() >= limits_.max_binaries) throw MsgpackError("too many binary values");
    buffers_.push_back(std::move(bytes));
    return json::object{{"_placeholder", true}, {"num", buffers_.size() - 1}};
  }

  Converted extension(std::int8_t type, const char* data, std::uint32_t size) {
    if (type == 0 && size == 1) return {nullptr, true};  // notepack's undefined
    if (type == 0 && size == 8) {                        // notepack's old Date: int64 milliseconds
      const auto hi = static_cast<std::int32_t>(be32(data));
      const long long ms = static_cast<long long>(hi) * 4294967296LL + be32(data + 4);
      return {iso_date(ms)};
    }
    if (type == 0) return {binary(std::string(data, size))};  // notepack's old ArrayBuffer
    if (type == -1 && (size == 4 || size == 8 || size == 12)) {
      long long seconds = 0;
      long long nanos = 0;
      if (size == 4) {
        seconds = be32(data);
      } else if (size == 8) {
        const std::uint32_t hi = be32(data);
        nanos = hi >> 2;
        seconds = (static_cast<long long>(hi & 0x3) << 32) | be32(data + 4);
      } else {
        nanos = be32(data);
        seconds = static_cast<long long>(static_cast<std::int32_t>(be32(data + 4))) * 4294967296LL + be32(data + 8);
      }
      // A Date holds ±8.64e15 ms; beyond it notepack's Date is invalid and toJSON gives null.
      constexpr long long max_seconds = 8'640'000'000'000LL;
      if (seconds > max_seconds || seconds < -max_seconds) return {nullptr};
      // notepack: new Date(s * 1e3 + ns / 1e6), the fraction of a millisecond cut toward zero.
      long long ms = seconds * 1000 + nanos / 1'000'000;
      if (ms < 0 && nanos % 1'000'000 != 0) ms += 1;
      return {iso_date(ms)};
    }
    json::array pair;  // notepack: [type, Buffer]
    pair.push_back(type);
    pair.push_back(binary(std::string(data, size)));
    return {std::move(pair)};
  }

  const MsgpackLimits& limits_;
  std::vector<std::string> buffers_;
};

// msgpack-c's packer writes into any stream with write(const char*, size_t).
struct StringSink {
  std::string& out;
  void write(const char* p, std::size_t n) { out.append(p, n); }
};

const json::value* placeholder_buffer(const json::object& o, const std::vector<std::string>& buffers, std::size_t& index) {
  if (o.size() != 2) return nullptr;
  const auto* flag = o.if_contains("_placeholder");
  const auto* num = o.if_contains("num");
  if (flag == nullptr || num == nullptr || !flag->is_bool() || !flag->get_bool()) return nullptr;
  if (num->is_int64() && num->get_int64() >= 0) index = static_cast<std::size_t>(num->get_int64());
  else if (num->is_uint64()) index = static_cast<std::size_t>(num->get_uint64());
  else return nullptr;
  return index < buffers.size() ? num : nullptr;
}

void pack(msgpack::packer<StringSink>& pk, const json::value& v, const std::vector<std::string>& buffers) {
  switch (v.kind()) {
    case json::kind::null: pk.pack_nil(); return;
    case json::kind::bool_: v.get_bool() ? pk.pack_true() : pk.pack_false(); return;
    case json::kind::int64: pk.pack_int64(v.get_int64()); return;  // the smallest encoding, as notepack
    case json::kind::uint64: pk.pack_uint64(v.get_uint64()); return;
    case json::kind::double_: {
      // notepack writes every integral number as an integer (JS has one number type).
      const double d = v.get_double();
      if (std::isfinite(d) && std::floor(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        pk.pack_int64(static_cast<std::int64_t>(d));
      else if (std::isfinite(d) && std::floor(d) == d && d >= 0 && d < 18446744073709551616.0)
        pk.pack_uint64(static_cast<std::uint64_t>(d));
      else
        pk.pack_double(d);
      return;
    }
    case json::kind::string: {
      const auto& s = v.get_string();
      pk.pack_str(static_cast<std::uint32_t>(s.size()));
      pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
      return;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      pk.pack_array(static_cast<std::uint32_t>(a.size()));
      for (const auto& e : a) pack(pk, e, buffers);
      return;
    }
    case json::kind::object: {
      const auto& o = v.get_object();
      std::size_t index = 0;
      if (placeholder_buffer(o, buffers, index) != nullptr) {
        const std::string& b = buffers[index];
        pk.pack_bin(static_cast<std::uint32_t>(b.size()));
        pk.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
        return;
      }
      pk.pack_map(static_cast<std::uint32_t>(o.size()));
      for (const auto& kv : o) {
        pk.pack_str(static_cast<std::uint32_t>(kv.key().size()));
        pk.pack_str_body(kv.key().data(), static_cast<std::uint32_t>(kv.key().size()));
        pack(pk, kv.value(), buffers);
      }
      return;
    }
  }
}

}  // namespace

JsonWithBuffers msgpack_to_json(std::string_view bytes, const MsgpackLimits& limits) {
  if (bytes.empty()) throw MsgpackError("an empty message");
  if (bytes.size() > limits.max_bytes) throw MsgpackError("a message larger than " + std::to_string(limits.max_bytes) + " bytes");
  // msgpack-c allocates a container's elements from its header before reading them: bound every
  // size by what the input could hold (an element takes at least one byte, a map entry two).
  const std::size_t n = bytes.size();
  const msgpack::unpack_limit limit(std::min(limits.max_elements, n), std::min(limits.max_elements, n / 2), n, n, n,
                                    limits.max_depth);
  msgpack::object_handle handle;
  std::size_t offset = 0;
  try {
    handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    throw MsgpackError("a truncated message");
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw MsgpackError(std::string("not msgpack within the limits: ") + e.what());
  }
  if (offset != bytes.size()) throw MsgpackError("bytes after the message");
  Converter converter(limits);
  Converted c = converter.convert(handle.get());
  return {c.undefined ? json::value(nullptr) : std::move(c.value), converter.take_buffers()};
}

void json_to_msgpack(const json::value& value, const std::vector<std::string>& buffers, std::string& out) {
  StringSink sink{out};
  msgpack::packer<StringSink> pk(sink);
  pack(pk, value, buffers);
}

std::string json_to_msgpack(const json::value& value, const std::vector<std::string>& buffers) {
  std::string out;
  json_to_msgpack(value, buffers, out);
  return out;
}

json::value iso_date(long long ms) {
  constexpr long long max_ms = 8'640'000'000'000'000LL;
  if (ms > max_ms || ms < -max_ms) return nullptr;
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds{ms}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{t - day};
  const int y = static_cast<int>(ymd.year());
  char year[16];
  if (y >= 0 && y <= 9999) std::snprintf(year, sizeof year, "%04d", y);
  else std::snprintf(year, sizeof year, "%c%06d", y < 0 ? '-' : '+', y < 0 ? -y : y);
  char text[64];
  std::snprintf(text, sizeof text, "%s-%02u-%02uT%02d:%02d:%02d.%03dZ", year, static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return json::string(text);
}

}  // namespace registrar::adapters::socketio_redis
