#pragma once
// The Notifier until the Socket.IO hub exists (issue 13), and beside it afterwards: every
// Create_User outcome as one log line `notification` {room, id, success, message}. The room and id
// are verification session ids (random, not personal data); the message is one of the five fixed
// Create_User messages, so nothing secret reaches the log. The outcome itself stays readable with
// GET /jobs/{id} (the queue's record).
#include "adapters/logging/json_logger.hpp"
#include "ports/notifier.hpp"

namespace registrar::adapters::logging {

class LogNotifier final : public ports::Notifier {
 public:
  explicit LogNotifier(const Logger& log) : log_(log) {}
  void notify(const ports::Notification& n) override {
    log_.info("notification", {{"room", n.room}, {"id", n.id}, {"success", n.success}, {"message", n.message}});
  }

 private:
  const Logger& log_;
};

}  // namespace registrar::adapters::logging
