#include "adapters/http/client_address.hpp"

#include <charconv>

namespace registrar::adapters::http {

namespace ip = boost::asio::ip;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<ip::address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  auto address = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return unmapped(address);
}

// The bytes of an address, network order (4 or 16).
std::vector<unsigned char> bytes_of(const ip::address& a) {
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return {b.begin(), b.end()};
  }
  auto b = a.to_v6().to_bytes();
  return {b.begin(), b.end()};
}

bool prefix_equal(const std::vector<unsigned char>& a, const std::vector<unsigned char>& b, unsigned prefix) {
  for (unsigned bit = 0; bit < prefix; bit += 8) {
    const unsigned bits = std::min(8u, prefix - bit);
    const unsigned char mask = static_cast<unsigned char>(0xFF00u >> bits);
    if ((a[bit / 8] & mask) != (b[bit / 8] & mask)) return false;
  }
  return true;
}

}  // namespace

ip::address unmapped(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  return address;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  text = trim(text);
  const auto slash = text.find('/');
  auto address = parse_address(text.substr(0, slash));
  if (!address) return std::nullopt;
  const unsigned max = address->is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty() || prefix > max) return std::nullopt;
  }
  // Host bits set past the prefix: refuse rather than guess what was meant.
  auto bytes = bytes_of(*address);
  for (unsigned bit = prefix; bit < max; ++bit)
    if (bytes[bit / 8] & (0x80u >> (bit % 8))) return std::nullopt;
  Cidr c;
  c.network_ = *address;
  c.prefix_ = prefix;
  return c;
}

bool Cidr::contains(const ip::address& address) const {
  const auto a = unmapped(address);
  if (a.is_v4() != network_.is_v4()) return false;
  return prefix_equal(bytes_of(a), bytes_of(network_), prefix_);
}

std::string Cidr::to_string() const { return network_.to_string() + "/" + std::to_string(prefix_); }

std::optional<TrustedProxies> TrustedProxies::parse(std::string_view list) {
  std::vector<Cidr> networks;
  while (!trim(list).empty()) {
    const auto comma = list.find(',');
    auto cidr = Cidr::parse(list.substr(0, comma));
    if (!cidr) return std::nullopt;
    networks.push_back(*cidr);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return TrustedProxies(std::move(networks));
}

bool TrustedProxies::trusts(const ip::address& address) const {
  for (const auto& n : networks_)
    if (n.contains(address)) return true;
  return false;
}

std::string TrustedProxies::client_ip(const ip::address& peer, std::string_view forwarded_for) const {
  ip::address client = unmapped(peer);
  if (!trusts(client)) return client.to_string();
  // From the right: each entry was appended by the proxy nearer to us than the one before it.
  while (!forwarded_for.empty()) {
    const auto comma = forwarded_for.rfind(',');
    const auto entry = trim(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view{} : forwarded_for.substr(0, comma);
    auto address = parse_address(entry);
    if (!address) break;  // garbage from a trusted proxy's client: stop at the last address we believe
    client = *address;
    if (!trusts(client)) break;
  }
  return client.to_string();
}

}  // namespace registrar::adapters::http
