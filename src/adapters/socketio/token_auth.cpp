#include "adapters/socketio/token_auth.hpp"

#include "adapters/sodium/secret_compare.hpp"

namespace registrar::adapters::socketio {
namespace {

// The admin token is compared in constant time (adapters/sodium/secret_compare.hpp).
using sodium::same_secret;

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
