#pragma once
// The wire format of events (DESIGN.md): a contract other software relies on.
#include <string>
#include "domain/event.hpp"
#include "domain/user.hpp"

namespace registrar::app {

// {"event":"user.registered","pattern":"user.registered",
//  "data":{"id","email","username","createdAt"},"timestamp":"…"}
domain::EventEnvelope make_user_registered(const domain::User& user, std::string event_id, domain::Timestamp now);

}  // namespace registrar::app
