#pragma once
// Who may connect to `serve`'s main namespace (DESIGN.md, "Notifications over Socket.IO"): a
// client sends `auth: {token}` in its CONNECT packet and
//  - a verification-session token or an access token of ours joins the room of its subject (the
//    session's id: its Create_User outcome; the account's id: its `user.registered`);
//  - the admin token (when one is set) joins the `admins` room;
//  - anything else is refused with CONNECT_ERROR: "Authentication required" without a token,
//    "Invalid or expired token" otherwise (never a silent close).
#include <string>

#include "adapters/socketio/sio_server.hpp"
#include "ports/room_broadcaster.hpp"
#include "ports/token_service.hpp"

namespace registrar::adapters::socketio {

// `tokens` must outlive the namespace. An empty `admin_token` admits no admin.
SioNamespace::Authorize token_authorize(ports::TokenService& tokens, std::string admin_token);

}  // namespace registrar::adapters::socketio
