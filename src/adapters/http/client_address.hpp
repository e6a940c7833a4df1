#pragma once
// Who the client is: the TCP peer's IP address, unless the peer is a proxy we were told to trust,
// in which case X-Forwarded-For says who it forwarded for. Rate limits and logs key on this, so a
// client must not be able to choose it: X-Forwarded-For from anyone else is ignored.
#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registrar::adapters::http {

// An IPv4 or IPv6 network in CIDR notation ("10.0.0.0/8", "::1/128"; a bare address is a /32 or /128).
class Cidr {
 public:
  // Nothing when `text` is not CIDR notation, or has host bits set past the prefix (10.0.0.1/8 is
  // a typo more often than a choice).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const boost::asio::ip::address& address) const;
  std::string to_string() const;

 private:
  boost::asio::ip::address network_;
  unsigned prefix_ = 0;
};

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for IPv4 peers)
// as the IPv4 address it is; any other address unchanged.
boost::asio::ip::address unmapped(const boost::asio::ip::address& address);

class TrustedProxies {
 public:
  TrustedProxies() = default;
  explicit TrustedProxies(std::vector<Cidr> networks) : networks_(std::move(networks)) {}
  // A comma-separated CIDR list ("" = none); nothing if an entry is not CIDR notation.
  static std::optional<TrustedProxies> parse(std::string_view list);

  bool trusts(const boost::asio::ip::address& address) const;
  bool empty() const { return networks_.empty(); }
  const std::vector<Cidr>& networks() const { return networks_; }

  // The client's address for a request from `peer` carrying the X-Forwarded-For values
  // `forwarded_for` (all fields joined with ", ", in order). Walks the list from the right (the
  // entry the nearest proxy appended) past trusted proxies; the first address not trusted is the
  // client. The peer itself when it is not trusted, the header is absent, or its nearest entry is
  // not an IP address (a proxy that forwards garbage is not believed further).
  std::string client_ip(const boost::asio::ip::address& peer, std::string_view forwarded_for) const;

 private:
  std::vector<Cidr> networks_;
};

}  // namespace registrar::adapters::http
