#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include "ports/event_bus.hpp"
#include "ports/outbox.hpp"

namespace registrar::app {

struct RelayOptions {
  std::string owner;                       // this relay's lease name (unique per process)
  std::size_t batch_size = 256;
  // A crashed relay's rows come back after this; a pass (publish + confirms) must fit in it.
  std::chrono::milliseconds lease{10'000};
};

struct RelayStats {
  std::size_t claimed = 0, sent = 0, released = 0;
};

// One pass of the outbox relay: claim a batch, publish it, mark what the bus confirmed as sent
// and give the rest back. At-least-once: a crash between publish and mark_sent re-sends, which
// consumers absorb by deduplicating on the event id. Throws BackendUnavailable (after giving its
// lease back where it can) when the bus is down; the driver loop backs off and retries.
RelayStats relay_once(ports::OutboxStore& outbox, ports::EventBus& bus, const RelayOptions& options);

}  // namespace registrar::app
