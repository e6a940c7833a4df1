#include "adapters/socketio/engineio_packet.hpp"

#include <sodium.h>

#include "adapters/sodium/base64.hpp"

namespace registrar::adapters::socketio {

namespace {

constexpr char kSeparator = '\x1e';

std::optional<EioType> type_of(char c) {
  if (c < '0' || c > '6') return std::nullopt;
  return static_cast<EioType>(c);
}

std::optional<EioPacket> decode_text(std::string_view text) {
  if (text.empty()) return std::nullopt;
  auto type = type_of(text.front());
  if (!type) return std::nullopt;
  return EioPacket{*type, std::string(text.substr(1)), false};
}

}  // namespace

std::optional<EioPacket> decode_ws_frame(std::string_view frame, bool binary_frame) {
  if (binary_frame) return EioPacket{EioType::message, std::string(frame), true};
  return decode_text(frame);
}

std::string encode_ws_frame(const EioPacket& packet) {
  if (packet.binary) return packet.data;
  std::string out;
  out.reserve(packet.data.size() + 1);
  out.push_back(static_cast<char>(packet.type));
  out += packet.data;
  return out;
}

std::optional<std::vector<EioPacket>> decode_payload(std::string_view body, const PayloadLimits& limits) {
  std::vector<EioPacket> packets;
  std::size_t start = 0;
  for (;;) {
    if (packets.size() == limits.max_packets) return std::nullopt;
    const std::size_t end = body.find(kSeparator, start);
    const std::string_view part = body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!part.empty() && part.front() == 'b') {
      auto bytes = sodium::base64_decode(part.substr(1), sodium_base64_VARIANT_ORIGINAL);
      if (!bytes) return std::nullopt;
      packets.push_back(EioPacket{EioType::message, std::move(*bytes), true});
    } else {
      auto packet = decode_text(part);
      if (!packet) return std::nullopt;
      packets.push_back(std::move(*packet));
    }
    if (end == std::string_view::npos) return packets;
    start = end + 1;
  }
}

std::string encode_payload(std::span<const EioPacket> packets) {
  std::string out;
  for (const auto& p : packets) {
    if (&p != packets.data()) out.push_back(kSeparator);
    if (p.binary) {
      out.push_back('b');
      out += sodium::base64_encode(p.data, sodium_base64_VARIANT_ORIGINAL);
    } else {
      out.push_back(static_cast<char>(p.type));
      out += p.data;
    }
  }
  return out;
}

}  // namespace registrar::adapters::socketio
