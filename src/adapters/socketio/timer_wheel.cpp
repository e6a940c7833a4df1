#include "adapters/socketio/timer_wheel.hpp"

#include <algorithm>

namespace registrar::adapters::socketio {

using Clock = std::chrono::steady_clock;

TimerWheel::State::State(boost::asio::any_io_executor executor, std::chrono::milliseconds tick_length, std::size_t slot_count)
    : tick(std::max<Clock::duration>(tick_length, std::chrono::milliseconds(1))), timer(std::move(executor)), slots(slot_count) {}

TimerWheel::TimerWheel(boost::asio::any_io_executor executor, std::chrono::milliseconds tick, std::chrono::milliseconds horizon)
    : state_(std::make_shared<State>(std::move(executor), tick,
                                     static_cast<std::size_t>(horizon / std::max(tick, std::chrono::milliseconds(1))) + 2)) {
  state_->self = state_;
}

TimerWheel::~TimerWheel() {
  clear();
  std::lock_guard lock(state_->mutex);
  state_->stopped = true;
}

void TimerWheel::clear() {
  std::lock_guard lock(state_->mutex);
  for (auto& slot : state_->slots) std::vector<Entry>().swap(slot);
  state_->pending = 0;
  state_->timer.cancel();  // its handler finds `armed` false and nothing due
  state_->armed = false;
}

void TimerWheel::schedule(std::weak_ptr<WheelTarget> target, std::uint64_t token, std::chrono::milliseconds delay) {
  auto& s = *state_;
  std::lock_guard lock(s.mutex);
  if (s.stopped) return;
  const auto now = Clock::now();
  if (!s.armed) s.cursor_end = now + s.tick;  // idle until now: every slot is empty, start afresh
  const auto due = now + delay;
  std::size_t ticks = 0;
  if (due > s.cursor_end) ticks = static_cast<std::size_t>((due - s.cursor_end + s.tick - Clock::duration(1)) / s.tick);
  ticks = std::min(ticks, s.slots.size() - 1);
  s.slots[(s.cursor + ticks) % s.slots.size()].push_back(Entry{std::move(target), token});
  ++s.pending;
  if (!s.armed) s.arm_locked();
}

std::size_t TimerWheel::size() const {
  std::lock_guard lock(state_->mutex);
  return state_->pending;
}

void TimerWheel::State::arm_locked() {
  armed = true;
  timer.expires_at(cursor_end);
  timer.async_wait([s = self.lock()](boost::system::error_code ec) { s->on_tick(ec); });
}

void TimerWheel::State::on_tick(boost::system::error_code ec) {
  std::vector<Entry> due;
  {
    std::lock_guard lock(mutex);
    if (ec || stopped || !armed) return;  // cancelled by clear() (which may have armed it again since: then `ec` says so)
    armed = false;
    const auto now = Clock::now();
    // Every slot whose tick has ended (more than one if the thread was busy).
    while (cursor_end <= now && pending > 0) {
      auto& slot = slots[cursor];
      pending -= slot.size();
      if (due.empty()) due.swap(slot);
      else due.insert(due.end(), std::make_move_iterator(slot.begin()), std::make_move_iterator(slot.end()));
      std::vector<Entry>().swap(slot);
      cursor = (cursor + 1) % slots.size();
      cursor_end += tick;
    }
    if (pending > 0) arm_locked();
  }
  for (auto& e : due)
    if (auto target = e.target.lock()) target->on_due(e.token);
}

}  // namespace registrar::adapters::socketio
