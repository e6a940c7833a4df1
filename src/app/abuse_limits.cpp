#include "app/abuse_limits.hpp"

#include <algorithm>
#include <cctype>

#include "domain/credentials.hpp"
#include "ports/errors.hpp"

namespace registrar::app {

BucketStep bucket_step(std::int64_t full_at, std::int64_t now, const ports::RateLimit& limit, unsigned cost) {
  const std::int64_t refill = limit.refill.count();
  const std::int64_t base = std::max(full_at, now);
  const std::int64_t need = std::max<std::int64_t>(cost, 1);
  // Tokens missing once `need` are taken, in ms of refill: over 0 means the bucket cannot give them.
  const std::int64_t over = (base - now) + need * refill - static_cast<std::int64_t>(limit.burst) * refill;
  if (over > 0) return {false, full_at, over};
  return {true, base + static_cast<std::int64_t>(cost) * refill, 0};
}

std::chrono::seconds retry_after_seconds(std::chrono::milliseconds wait) {
  const auto ms = std::max<std::int64_t>(wait.count(), 1);
  return std::chrono::seconds{(ms + 999) / 1000};
}

namespace {

std::string trimmed_lower(std::string_view raw) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!raw.empty() && space(raw.front())) raw.remove_prefix(1);
  while (!raw.empty() && space(raw.back())) raw.remove_suffix(1);
  std::string out(raw);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string canonical_identifier(IdentifierKind kind, std::string_view raw) {
  if (kind == IdentifierKind::login)
    kind = raw.find('@') != std::string_view::npos ? IdentifierKind::email : IdentifierKind::username;
  switch (kind) {
    case IdentifierKind::email:
      if (auto e = domain::Email::parse(raw)) return "email:" + e->canonical();
      return "email:" + trimmed_lower(raw);
    case IdentifierKind::username:
      if (auto u = domain::Username::parse(raw)) return "username:" + u->canonical();
      return "username:" + trimmed_lower(raw);
    case IdentifierKind::phone:
      if (auto p = domain::Phone::parse(raw)) return "phone:" + p->canonical();
      return "phone:" + trimmed_lower(raw);
    case IdentifierKind::login:
      break;
  }
  return trimmed_lower(raw);
}

std::string_view route_name(LimitedRoute route) {
  switch (route) {
    case LimitedRoute::register_user: return "register";
    case LimitedRoute::login: return "login";
    case LimitedRoute::codes: return "codes";
    case LimitedRoute::jobs: return "jobs";
  }
  return "other";
}

const RouteLimits& AbuseLimitSettings::of(LimitedRoute route) const {
  switch (route) {
    case LimitedRoute::register_user: return register_user;
    case LimitedRoute::login: return login;
    case LimitedRoute::codes: return codes;
    case LimitedRoute::jobs: return jobs;
  }
  return jobs;
}

AbuseLimits::AbuseLimits(ports::RateLimiter& buckets, ports::PiiCipher& keys, AbuseLimitSettings settings)
    : buckets_(buckets), keys_(keys), settings_(std::move(settings)) {}

std::string AbuseLimits::ip_key(LimitedRoute route, std::string_view client_ip) const {
  return "rl:" + std::string(route_name(route)) + ":ip:" + keys_.blind_index(client_ip, "rate-limit");
}

std::string AbuseLimits::identifier_key(LimitedRoute route, std::string_view identifier) const {
  return "rl:" + std::string(route_name(route)) + ":id:" + keys_.blind_index(identifier, "rate-limit");
}

std::string AbuseLimits::lockout_key(std::string_view identifier, std::string_view client_ip) const {
  // The length first, so that no (identifier, address) pair reads as another.
  std::string pair = std::to_string(identifier.size()) + ":" + std::string(identifier) + "|" + std::string(client_ip);
  return "rl:login:lockout:" + keys_.blind_index(pair, "rate-limit");
}

Admission AbuseLimits::admit(LimitedRoute route, std::string_view client_ip, const std::vector<std::string>& identifiers) {
  const RouteLimits& limits = settings_.of(route);
  std::vector<ports::RateCharge> charges;
  if (limits.per_ip.enabled() && !client_ip.empty()) charges.push_back({ip_key(route, client_ip), limits.per_ip, 1});
  if (limits.per_identifier.enabled())
    for (const auto& id : identifiers) charges.push_back({identifier_key(route, id), limits.per_identifier, 1});
  // The lockout is looked at separately first: a locked account is told so (the wait is the
  // lockout's), and a locked-out request takes nothing from the rate buckets.
  if (route == LimitedRoute::login && settings_.lockout.enabled()) {
    std::vector<ports::RateCharge> lockout;
    for (const auto& id : identifiers) lockout.push_back({lockout_key(id, client_ip), settings_.lockout, 0});
    if (!lockout.empty()) {
      auto d = buckets_.acquire(lockout);
      if (!d.allowed) return {false, d.retry_after, true};
    }
  }
  if (charges.empty()) return {};
  auto d = buckets_.acquire(charges);
  return {d.allowed, d.retry_after, false};
}

void AbuseLimits::login_failed(const std::string& identifier, std::string_view client_ip) {
  if (!settings_.lockout.enabled()) return;
  buckets_.acquire({{lockout_key(identifier, client_ip), settings_.lockout, 1}});
}

void AbuseLimits::login_succeeded(const std::string& identifier, std::string_view client_ip) {
  if (!settings_.lockout.enabled()) return;
  buckets_.reset(lockout_key(identifier, client_ip));
}

void AbuseLimits::not_served(LimitedRoute route, const std::vector<std::string>& identifiers) {
  if (!settings_.of(route).per_identifier.enabled()) return;
  for (const auto& id : identifiers) buckets_.reset(identifier_key(route, id));
}

FailoverRateLimiter::FailoverRateLimiter(ports::RateLimiter& shared, ports::RateLimiter& local, StoreDownPolicy policy,
                                         std::function<void(bool, std::string_view)> on_change)
    : shared_(shared), local_(local), policy_(policy), on_change_(std::move(on_change)) {}

void FailoverRateLimiter::note(bool down, std::string_view error) {
  {
    std::lock_guard lock(mutex_);
    if (down_ == down) return;
    down_ = down;
  }
  if (on_change_) on_change_(down, error);
}

ports::RateDecision FailoverRateLimiter::acquire(const std::vector<ports::RateCharge>& charges) {
  try {
    auto d = shared_.acquire(charges);
    note(false, {});
    return d;
  } catch (const ports::BackendUnavailable& e) {
    note(true, e.what());
    switch (policy_) {
      case StoreDownPolicy::local: return local_.acquire(charges);
      case StoreDownPolicy::open: return {};
      case StoreDownPolicy::closed: throw;
    }
    throw;
  }
}

void FailoverRateLimiter::reset(const std::string& key) {
  try {
    shared_.reset(key);
    note(false, {});
  } catch (const ports::BackendUnavailable& e) {
    note(true, e.what());
    if (policy_ == StoreDownPolicy::closed) throw;
  }
  // The local buckets may hold this key from an outage: clear it there too.
  local_.reset(key);
}

}  // namespace registrar::app
