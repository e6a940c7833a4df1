#include "adapters/bull/bull_queue.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>

#include "adapters/bull/scripts.hpp"
#include "adapters/sodium/hex.hpp"
#include "adapters/sodium/sodium.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::bull {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// bull's queue token: uuid v4 (bull uses the `uuid` package's v4).
std::string uuid_v4() {
  sodium::ensure_sodium();
  std::array<unsigned char, 16> b{};
  randombytes_buf(b.data(), b.size());
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  const std::string hex = sodium::hex_encode(std::span<const unsigned char>(b));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

// --- MessagePack, for the two arguments bull's scripts cmsgpack.unpack: the job's opts (a string
// holding JSON) and keepJobs ({count, age}). Written out rather than taking a MessagePack library
// for two fixed shapes of a few bytes each (Node's bull packs them with msgpackr; any valid
// encoding decodes the same in Lua).
void pack_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void pack_str(std::string& out, std::string_view s) {
  if (s.size() < 32) {
    out.push_back(static_cast<char>(0xa0 | s.size()));
  } else if (s.size() < 0x100) {
    out.push_back(static_cast<char>(0xd9));
    pack_be(out, s.size(), 1);
  } else if (s.size() < 0x10000) {
    out.push_back(static_cast<char>(0xda));
    pack_be(out, s.size(), 2);
  } else {
    out.push_back(static_cast<char>(0xdb));
    pack_be(out, s.size(), 4);
  }
  out.append(s);
}

void pack_number(std::string& out, const json::value& v) {
  if (v.is_double()) {
    out.push_back(static_cast<char>(0xcb));
    pack_be(out, std::bit_cast<std::uint64_t>(v.get_double()), 8);
    return;
  }
  const long long n = v.is_int64() ? v.get_int64() : static_cast<long long>(v.get_uint64());
  if (n >= 0 && n < 128) {
    out.push_back(static_cast<char>(n));
  } else if (n < 0 && n >= -32) {
    out.push_back(static_cast<char>(static_cast<unsigned char>(n)));  // negative fixint
  } else {
    out.push_back(static_cast<char>(0xd3));
    pack_be(out, static_cast<std::uint64_t>(n), 8);
  }
}

// scripts.moveToFinishedArgs' keepJobs: an object as it is ({age, count}), a number n as
// {count: n}, anything else as {count: truthy ? 0 : -1} (0: remove the job, -1: keep all).
std::string pack_keep_jobs(const json::value* remove) {
  std::string out;
  if (remove != nullptr && remove->is_object()) {
    std::vector<std::pair<std::string_view, const json::value*>> fields;
    for (const char* name : {"count", "age"}) {
      if (const auto* f = remove->as_object().if_contains(name); f != nullptr && f->is_number()) fields.emplace_back(name, f);
    }
    out.push_back(static_cast<char>(0x80 | fields.size()));
    for (const auto& [name, value] : fields) {
      pack_str(out, name);
      pack_number(out, *value);
    }
    return out;
  }
  out.push_back(static_cast<char>(0x81));
  pack_str(out, "count");
  if (remove != nullptr && remove->is_number()) {
    pack_number(out, *remove);
  } else {
    const bool truthy = remove != nullptr && ((remove->is_bool() && remove->get_bool()) ||
                                              (remove->is_string() && !remove->get_string().empty()));
    pack_number(out, json::value(truthy ? 0 : -1));
  }
  return out;
}

json::object parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

void require_json(std::string_view text, const char* what) {
  boost::system::error_code ec;
  json::parse(text, ec);
  if (ec) throw std::invalid_argument(std::string(what) + " is not JSON");
}

double number_of(const json::value* v, double fallback) {
  if (v == nullptr) return fallback;
  if (v->is_number()) return v->to_number<double>();
  if (v->is_string()) {  // parseInt / Number of a string, as Node would
    double d = 0;
    const auto s = v->get_string();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec == std::errc{}) return d;
  }
  return fallback;
}

long long integer_of(std::string_view s, long long fallback) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} ? v : fallback;
}

// An error reply that means "not now" (a server loading its data after a restart, a busy script,
// a replica) is an outage like a lost connection; any other is a bug here or in the script.
const redis::Reply& checked(const redis::Reply& reply) {
  if (reply.is_error()) {
    for (const char* transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"}) {
      if (reply.str.starts_with(transient)) throw ports::BackendUnavailable(std::string("redis: ") + transient);
    }
  }
  return reply.throw_if_error();
}

std::map<std::string, std::string, std::less<>> hash_of(const redis::Reply& fields) {
  std::map<std::string, std::string, std::less<>> out;
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) out[fields.elements[i].str] = fields.elements[i + 1].str;
  return out;
}

std::optional<std::string> field(const std::map<std::string, std::string, std::less<>>& hash, std::string_view name) {
  if (auto it = hash.find(name); it != hash.end()) return it->second;
  return std::nullopt;
}

// Runs script `first` then `second` in one script: each source unchanged, in a function of its
// own whose KEYS and ARGV are its share of the call's (ARGV[1]: how many ARGV are the first's).
// Returns the second's result, as Node takes the last result of its MULTI.
std::string compose(const Script& first, const Script& second) {
  std::string s;
  s += "local function bull_first(KEYS, ARGV)\n";
  s += first.source;
  s += "\nend\nlocal function bull_second(KEYS, ARGV)\n";
  s += second.source;
  s += "\nend\n"
       "local function slice(t, from, to)\n"
       "  local r = {}\n"
       "  for i = from, to do r[#r + 1] = t[i] end\n"
       "  return r\n"
       "end\n"
       "local n = tonumber(ARGV[1])\n";
  s += "bull_first(slice(KEYS, 1, " + std::to_string(first.keys) + "), slice(ARGV, 2, n + 1))\n";
  s += "return bull_second(slice(KEYS, " + std::to_string(first.keys + 1) + ", #KEYS), slice(ARGV, n + 2, #ARGV))\n";
  return s;
}

}  // namespace

std::int64_t backoff_delay_ms(std::string_view type, double delay, int attempts_made) {
  if (!std::isfinite(delay)) return 0;
  if (type == "fixed") return static_cast<std::int64_t>(delay);
  if (type == "exponential") return std::llround((std::pow(2.0, attempts_made) - 1) * delay);
  return 0;
}

BullQueue::BullQueue(redis::Client& client, redis::Client& blocking, BullQueueOptions options,
                     redis::Subscriber* events)
    : client_(client), blocking_(blocking), options_(std::move(options)), token_(uuid_v4()), events_(events) {
  if (options_.prefix.empty() || options_.queue.empty()) throw std::invalid_argument("bull: prefix and queue name are required");
  base_ = key("");
}

BullQueue::~BullQueue() {
  bool subscribed;
  {
    std::lock_guard lock(wakeup_->mutex);
    subscribed = wakeup_->subscribed;
    wakeup_->wake = nullptr;
  }
  if (subscribed) {
    try {
      events_->unsubscribe(key("delayed"));
    } catch (...) {
      // Its callback only reaches the shared Wakeup, emptied above.
    }
  }
}

void BullQueue::on_wakeup(std::function<void()> wake) {
  if (events_ == nullptr) return;
  {
    // Calls run under the mutex: once this returns, the previous function is never called again.
    std::lock_guard lock(wakeup_->mutex);
    wakeup_->wake = std::move(wake);
    if (!wakeup_->wake || wakeup_->subscribed) return;
    wakeup_->subscribed = true;
  }
  // Any message on the channel (a delayed job's due time, from addJob, moveToDelayed,
  // updateDelaySet) wakes maintenance(), which reads the delayed set itself.
  try {
    events_->subscribe(key("delayed"), [state = wakeup_](std::string_view, std::string_view) {
      std::lock_guard lock(state->mutex);
      if (state->wake) state->wake();
    });
  } catch (const std::exception&) {
    // Refused (ACL): maintenance() still runs every guard interval.
    std::lock_guard lock(wakeup_->mutex);
    wakeup_->subscribed = false;
  }
}

std::string BullQueue::key(std::string_view name) const {
  std::string k = options_.prefix;
  k += ':';
  k += options_.queue;
  k += ':';
  k += name;
  return k;
}

redis::Reply BullQueue::run(std::string_view name, const std::vector<std::string>& keys,
                            const std::vector<std::string>& args) {
  const Script& s = script(name);
  if (static_cast<int>(keys.size()) != s.keys) throw std::logic_error("bull: wrong number of keys for " + std::string(name));
  redis::Reply reply = client_.eval(s.source, keys, args);
  checked(reply);
  return reply;
}

redis::Reply BullQueue::run_pair(std::string_view first, const std::vector<std::string>& first_keys,
                                 const std::vector<std::string>& first_args, std::string_view second,
                                 const std::vector<std::string>& second_keys,
                                 const std::vector<std::string>& second_args) {
  const Script& a = script(first);
  const Script& b = script(second);
  if (static_cast<int>(first_keys.size()) != a.keys || static_cast<int>(second_keys.size()) != b.keys) {
    throw std::logic_error("bull: wrong number of keys for " + std::string(first) + "+" + std::string(second));
  }
  // Built once per pair (three pairs are used).
  static std::mutex mutex;
  static std::map<std::string, std::string, std::less<>> sources;
  const std::string pair = std::string(first) + "+" + std::string(second);
  std::string source;
  {
    std::lock_guard lock(mutex);
    auto it = sources.find(pair);
    if (it == sources.end()) it = sources.emplace(pair, compose(a, b)).first;
    source = it->second;
  }
  std::vector<std::string> keys = first_keys;
  keys.insert(keys.end(), second_keys.begin(), second_keys.end());
  std::vector<std::string> args{std::to_string(first_args.size())};
  args.insert(args.end(), first_args.begin(), first_args.end());
  args.insert(args.end(), second_args.begin(), second_args.end());
  redis::Reply reply = client_.eval(source, keys, args);
  checked(reply);
  return reply;
}

// --- producer side --------------------------------------------------------------------------

std::string BullQueue::add(std::string_view data_json, const ports::JobOptions& options) {
  require_json(data_json, "job data");
  // What Node's Job constructor (setDefaultOpts) and toData() store as `opts`.
  const std::int64_t timestamp = now_ms();
  json::object opts;
  opts["attempts"] = std::max(1, options.attempts);
  opts["delay"] = 0;
  opts["timestamp"] = timestamp;
  if (!options.backoff_type.empty()) {
    opts["backoff"] = json::object{{"type", options.backoff_type}, {"delay", options.backoff_delay.count()}};
  }
  if (options.remove_on_complete) opts["removeOnComplete"] = true;
  if (options.remove_on_fail) opts["removeOnFail"] = true;
  std::string packed_opts;
  pack_str(packed_opts, json::serialize(opts));

  // scripts.addJob
  const redis::Reply reply = run(
      "addJob", {key("wait"), key("paused"), key("meta-paused"), key("id"), key("delayed"), key("priority")},
      {base_, /*custom id*/ "", "__default__", std::string(data_json), packed_opts, std::to_string(timestamp),
       /*delay*/ "0", /*delayed timestamp*/ "0", /*priority*/ "0", "LPUSH", token_, /*debounce*/ "", "", ""});
  return reply.type == redis::Reply::Type::integer ? std::to_string(reply.integer) : reply.str;
}

std::optional<ports::JobStatus> BullQueue::status(std::string_view job_id) {
  const std::string id(job_id);
  ports::JobStatus st;
  st.id = id;
  // Job.getState, in its order. Read before the hash: a job only moves forward, so the fields read
  // next are at least as new as the state (never "failed" without its failedReason).
  auto in_set = [&](std::string_view set) {
    return !checked(client_.command({"ZSCORE", key(set), id})).is_nil();
  };
  auto in_list = [&](std::string_view list) {
    const redis::Reply r = run("isJobInList", {key(list)}, {id});
    return r.type == redis::Reply::Type::integer && r.integer == 1;
  };
  if (in_set("completed")) st.state = ports::JobState::completed;
  else if (in_set("failed")) st.state = ports::JobState::failed;
  else if (in_set("delayed")) st.state = ports::JobState::delayed;
  else if (in_list("active")) st.state = ports::JobState::active;
  else if (in_list("wait")) st.state = ports::JobState::waiting;
  else if (in_list("paused")) st.state = ports::JobState::paused;
  else st.state = ports::JobState::unknown;

  const redis::Reply all = client_.command({"HGETALL", key(id)});
  checked(all);
  if (all.elements.empty()) return std::nullopt;  // Job.fromId: null
  const auto hash = hash_of(all);
  st.return_value = field(hash, "returnvalue");
  st.failed_reason = field(hash, "failedReason");
  if (st.failed_reason && st.failed_reason->empty()) st.failed_reason.reset();
  st.attempts_made = static_cast<int>(integer_of(field(hash, "attemptsMade").value_or("0"), 0));
  if (auto f = field(hash, "finishedOn")) st.finished_on = integer_of(*f, 0);
  st.data = field(hash, "data").value_or("");
  return st;
}

// --- worker side ----------------------------------------------------------------------------

std::optional<ports::Job> BullQueue::take(milliseconds wait) {
  if (!drained_.load() || wait <= milliseconds(0)) {
    if (auto job = move_to_active("")) return job;
    drained_.store(true);
    if (wait <= milliseconds(0)) return std::nullopt;
  }
  // Queue#getNextJob when drained: BRPOPLPUSH wait → active, then moveToActive(id). One thread at
  // a time blocks on the connection; the others wait here, as long as they were willing to.
  {
    std::unique_lock lock(blocking_mutex_);
    if (!blocking_free_.wait_for(lock, wait, [this] { return !blocking_busy_; })) return std::nullopt;
    blocking_busy_ = true;
  }
  const auto release = [this] {
    {
      std::lock_guard lock(blocking_mutex_);
      blocking_busy_ = false;
    }
    blocking_free_.notify_one();
  };
  // Never 0 (blocks forever); Redis >= 6 takes a decimal timeout in seconds.
  const auto ms = std::max<long long>(wait.count(), 10);
  const std::string timeout = std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
  redis::Reply reply;
  try {
    reply = blocking_.command({"BRPOPLPUSH", key("wait"), key("active"), timeout}, wait);
  } catch (...) {
    release();
    throw;
  }
  release();
  checked(reply);
  if (reply.is_nil()) return std::nullopt;
  return move_to_active(reply.str);
}

std::optional<ports::Job> BullQueue::move_to_active(const std::string& job_id) {
  // scripts.moveToActive (no limiter arguments: we set no rate limiter).
  const redis::Reply reply =
      run("moveToActive",
          {key("wait"), key("active"), key("priority"), key("active") + "@" + token_, key("stalled"), key("limiter"),
           key("delayed"), key("drained")},
          {base_, token_, std::to_string(options_.lock_duration.count()), std::to_string(now_ms()), job_id});
  if (reply.type != redis::Reply::Type::array || reply.elements.size() < 2 || reply.elements[0].elements.empty()) {
    return std::nullopt;  // nothing waiting (or the job's hash is gone: Node takes nothing either)
  }
  drained_.store(false);
  const auto hash = hash_of(reply.elements[0]);
  const redis::Reply& id = reply.elements[1];

  ports::Job job;
  job.id = id.type == redis::Reply::Type::integer ? std::to_string(id.integer) : id.str;
  job.data = field(hash, "data").value_or("{}");
  job.attempts_made = static_cast<int>(integer_of(field(hash, "attemptsMade").value_or("0"), 0));
  job.lock_token = token_;

  // Job.fromJSON → setDefaultOpts: attempts (default 1), backoff normalized (a number is fixed).
  const json::object opts = parse_object(field(hash, "opts").value_or("{}"));
  Taken taken;
  job.options.attempts = static_cast<int>(number_of(opts.if_contains("attempts"), 1));
  if (const auto* b = opts.if_contains("backoff")) {
    if (b->is_number()) {
      taken.backoff_type = "fixed";
      taken.backoff_delay = b->to_number<double>();
    } else if (b->is_object()) {
      if (const auto* t = b->as_object().if_contains("type"); t != nullptr && t->is_string()) {
        taken.backoff_type = std::string(t->get_string());
      }
      taken.backoff_delay = number_of(b->as_object().if_contains("delay"), 0);
    }
  }
  job.options.backoff_type = taken.backoff_type;
  job.options.backoff_delay = milliseconds(static_cast<long long>(std::isfinite(taken.backoff_delay) ? taken.backoff_delay : 0));
  taken.keep_completed = pack_keep_jobs(opts.if_contains("removeOnComplete"));
  taken.keep_failed = pack_keep_jobs(opts.if_contains("removeOnFail"));
  static const json::value yes(true);
  static const std::string remove_all = pack_keep_jobs(&yes);
  job.options.remove_on_complete = taken.keep_completed == remove_all;
  job.options.remove_on_fail = taken.keep_failed == remove_all;
  if (const auto* l = opts.if_contains("lifo")) taken.lifo = l->is_bool() && l->get_bool();
  if (const auto* l = opts.if_contains("stackTraceLimit"); l != nullptr && l->is_number()) {
    taken.stacktrace_limit = l->to_number<long long>();
  }
  boost::system::error_code ec;
  const json::value traces = json::parse(field(hash, "stacktrace").value_or("[]"), ec);
  if (traces.is_array()) {
    for (const auto& t : traces.as_array()) {
      if (t.is_string()) taken.stacktrace.emplace_back(t.get_string());
    }
  }
  {
    std::lock_guard lock(taken_mutex_);
    taken_[job.id] = std::move(taken);
  }
  return job;
}

BullQueue::Taken BullQueue::taken_of(const ports::Job& job) {
  {
    std::lock_guard lock(taken_mutex_);
    if (auto it = taken_.find(job.id); it != taken_.end()) return it->second;
  }
  // A job this object did not take (another BullQueue on the same queue): its options as given.
  Taken t;
  t.backoff_type = job.options.backoff_type;
  t.backoff_delay = static_cast<double>(job.options.backoff_delay.count());
  const json::value yes(true);
  t.keep_completed = pack_keep_jobs(job.options.remove_on_complete ? &yes : nullptr);
  t.keep_failed = pack_keep_jobs(job.options.remove_on_fail ? &yes : nullptr);
  return t;
}

void BullQueue::forget(const std::string& job_id) {
  std::lock_guard lock(taken_mutex_);
  taken_.erase(job_id);
}

bool BullQueue::extend_lock(const ports::Job& job) {
  // scripts.extendLock (also takes the job out of the stalled set).
  const redis::Reply r = run("extendLock", {key(job.id) + ":lock", key("stalled")},
                             {job.lock_token, std::to_string(options_.lock_duration.count()), job.id});
  return r.type == redis::Reply::Type::integer && r.integer == 1;
}

std::vector<std::string> BullQueue::move_to_finished_args(const ports::Job& job, std::int64_t finished_on,
                                                          bool completed, std::string_view value,
                                                          const std::string& keep_jobs) const {
  // JSON.stringify({jobId: job.id, val}): what Node's job.finished() receives.
  const std::string event = json::serialize(json::object{{"jobId", job.id}, {"val", value}});
  std::vector<std::string> args{job.id,
                                std::to_string(finished_on),
                                completed ? "returnvalue" : "failedReason",
                                std::string(value),
                                job.lock_token,
                                keep_jobs,
                                event,
                                /*fetch the next job*/ "0",
                                base_,
                                std::to_string(options_.lock_duration.count()),
                                job.lock_token,
                                /*metrics: off*/ ""};
  return args;
}

bool BullQueue::complete(const ports::Job& job, std::string_view return_value_json) {
  require_json(return_value_json, "return value");
  const Taken taken = taken_of(job);
  // scripts.moveToCompleted
  const redis::Reply r =
      run("moveToFinished",
          {key("active"), key("completed"), key(job.id), key("wait"), key("priority"), key("active") + "@" + token_,
           key("delayed"), key("stalled"), key("metrics:completed")},
          move_to_finished_args(job, now_ms(), true, return_value_json, taken.keep_completed));
  forget(job.id);
  return r.type == redis::Reply::Type::integer && r.integer == 0;
}

bool BullQueue::fail(const ports::Job& job, std::string_view reason, bool retry) {
  Taken taken = taken_of(job);
  // Job#moveToFailed: _saveAttempt, then retry (delayed or at once) or fail.
  const int attempts_made = job.attempts_made + 1;
  taken.stacktrace.push_back("Error: " + std::string(reason));
  if (taken.stacktrace_limit && *taken.stacktrace_limit > 0 &&
      taken.stacktrace.size() > static_cast<std::size_t>(*taken.stacktrace_limit)) {
    taken.stacktrace.erase(taken.stacktrace.begin(),
                           taken.stacktrace.end() - static_cast<std::ptrdiff_t>(*taken.stacktrace_limit));
  }
  json::array traces;
  for (const auto& t : taken.stacktrace) traces.emplace_back(t);
  const std::vector<std::string> save_keys{key(job.id)};
  const std::vector<std::string> save_args{json::serialize(traces), std::string(reason), std::to_string(attempts_made)};

  redis::Reply r;
  if (retry && attempts_made < job.options.attempts) {
    const std::int64_t delay = backoff_delay_ms(taken.backoff_type, taken.backoff_delay, attempts_made);
    if (delay > 0) {
      // scripts.moveToDelayedArgs: the timestamp with the id's low 12 bits baked in.
      const std::int64_t ts = (now_ms() + delay) * 0x1000 + (integer_of(job.id, 0) & 0xfff);
      r = run_pair("saveStacktrace", save_keys, save_args, "moveToDelayed",
                   {key("active"), key("delayed"), key(job.id), key("stalled")},
                   {std::to_string(ts), job.id, job.lock_token});
    } else {
      r = run_pair("saveStacktrace", save_keys, save_args, "retryJob",
                   {key("active"), key("wait"), key(job.id), key("meta-paused"), key("paused"), key("stalled"),
                    key("priority")},
                   {taken.lifo ? "RPUSH" : "LPUSH", job.id, job.lock_token});
    }
  } else {
    r = run_pair("saveStacktrace", save_keys, save_args, "moveToFinished",
                 {key("active"), key("failed"), key(job.id), key("wait"), key("priority"),
                  key("active") + "@" + token_, key("delayed"), key("stalled"), key("metrics:failed")},
                 move_to_finished_args(job, now_ms(), false, reason, taken.keep_failed));
  }
  forget(job.id);
  return r.type == redis::Reply::Type::integer && r.integer == 0;
}

void BullQueue::update_data(const ports::Job& job, std::string_view data_json) {
  require_json(data_json, "job data");
  run("updateData", {key(job.id)}, {std::string(data_json)});  // -1: the job is gone, nothing to replace
}

std::chrono::milliseconds BullQueue::maintenance() {
  // Queue#updateDelayTimer: promote what is due (1000 at a time, again while more is due), then
  // wait for the next delayed job, at most the guard interval.
  milliseconds next = options_.guard_interval;
  for (int round = 0; round < 100; ++round) {
    const std::int64_t now = now_ms();
    const redis::Reply r = run("updateDelaySet",
                               {key("delayed"), key("active"), key("wait"), key("priority"), key("paused"), key("meta-paused")},
                               {base_, std::to_string(now), token_});
    if (r.is_nil() || r.str.empty()) break;
    double score = 0;
    std::from_chars(r.str.data(), r.str.data() + r.str.size(), score);
    const auto due_in = static_cast<long long>(std::ceil(score / 4096.0)) - now_ms();
    if (due_in > 0) {
      next = std::min(next, milliseconds(due_in));
      break;
    }
  }
  // Queue#moveUnlockedJobsToWait (the script itself runs at most once per stalled interval).
  if (options_.stalled_interval > milliseconds(0)) {
    const redis::Reply r = run("moveStalledJobsToWait",
                               {key("stalled"), key("wait"), key("active"), key("failed"), key("stalled-check"),
                                key("meta-paused"), key("paused")},
                               {std::to_string(options_.max_stalled_count), base_, std::to_string(now_ms()),
                                std::to_string(options_.stalled_interval.count())});
    if (r.type == redis::Reply::Type::array && r.elements.size() == 2) {
      stalled_failed_ += r.elements[0].elements.size();
      stalled_requeued_ += r.elements[1].elements.size();
      if (!r.elements[1].elements.empty()) drained_.store(false);
    }
    next = std::min(next, options_.stalled_interval);
  }
  return next;
}

void BullQueue::pause() {
  run("pause", {key("wait"), key("paused"), key("meta-paused"), key("paused"), key("meta")}, {"paused"});
}

void BullQueue::resume() {
  run("pause", {key("paused"), key("wait"), key("meta-paused"), key("resumed"), key("meta")}, {"resumed"});
  drained_.store(false);
}

bool BullQueue::paused() {
  // Queue#isPaused: meta-paused, or BullMQ's `meta` hash field.
  const redis::Reply a = checked(client_.command({"EXISTS", key("meta-paused")}));
  const redis::Reply b = checked(client_.command({"HEXISTS", key("meta"), "paused"}));
  return a.integer != 0 || b.integer != 0;
}

BullJobCounts BullQueue::counts() {
  auto count = [&](std::string_view cmd, std::string_view name) {
    return checked(client_.command({cmd, key(name)})).integer;
  };
  BullJobCounts c;
  c.waiting = count("LLEN", "wait");
  c.active = count("LLEN", "active");
  c.completed = count("ZCARD", "completed");
  c.failed = count("ZCARD", "failed");
  c.delayed = count("ZCARD", "delayed");
  c.paused = count("LLEN", "paused");
  return c;
}

}  // namespace registrar::adapters::bull
