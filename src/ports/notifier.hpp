#pragma once
// Tells a user (and whoever watches) the outcome of their work: the Create_User job's
// `notification {id, success, message}`. Adapters: the log (+ the job record, until the
// Socket.IO hub exists), the Socket.IO hub, a Socket.IO client of an existing notification server.
// Best effort: a notification that cannot be delivered is logged and dropped, never retried into
// a second account; the job's own outcome (GET /jobs/{id}, Bull's returnvalue) is the record.
#include <string>

namespace registrar::ports {

struct Notification {
  std::string room;     // whom it is for: the verification session's subject (its id)
  std::string id;       // the job data's `id`
  bool success = false;
  std::string message;  // one of the Create_User messages (app/create_user.hpp)
};

class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify(const Notification& notification) = 0;
};

}  // namespace registrar::ports
