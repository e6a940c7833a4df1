#include "adapters/socketio/token_auth.hpp"

#include <sodium.h>

#include <array>

namespace registrar::adapters::socketio {
namespace {

// Compares a presented token with the admin token in constant time, whatever their lengths: both
// are hashed (BLAKE2b) first, and the hashes compared with sodium_memcmp.
bool same_secret(std::string_view presented, std::string_view secret) {
  std::array<unsigned char, crypto_generichash_BYTES> a{}, b{};
  crypto_generichash(a.data(), a.size(), reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), nullptr, 0);
  crypto_generichash(b.data(), b.size(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), nullptr, 0);
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

SioNamespace::Authorize token_authorize(ports::TokenService& tokens, std::string admin_token) {
  return [&tokens, admin = std::move(admin_token)](SioSocket& socket) -> std::optional<ConnectRefusal> {
    const auto& auth = socket.auth();
    const auto* token = auth.is_object() ? auth.as_object().if_contains("token") : nullptr;
    if (token == nullptr || !token->is_string() || token->get_string().empty())
      return ConnectRefusal{"Authentication required", nullptr};
    const std::string_view text = token->get_string();
    if (!admin.empty() && same_secret(text, admin)) {
      socket.join(ports::kAdminsRoom);
      return std::nullopt;
    }
    auto claims = tokens.verify(text, ports::TokenType::verification);
    if (!claims) claims = tokens.verify(text, ports::TokenType::access);
    if (!claims) return ConnectRefusal{"Invalid or expired token", nullptr};
    socket.join(claims->subject);
    return std::nullopt;
  };
}

}  // namespace registrar::adapters::socketio
