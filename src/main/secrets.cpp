#include "main/secrets.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "adapters/sodium/random_ids.hpp"

namespace registrar::config {
namespace {

namespace fs = std::filesystem;

Exit fail(int code, const std::string& message) { return Exit{code, "", "registrar: " + message + "\n"}; }

std::optional<Exit> check_length(const std::string& secret, const std::string& what) {
  if (secret.size() >= kMinSecretBytes) return std::nullopt;
  return fail(2, what + " is " + std::to_string(secret.size()) + " bytes; at least " +
                     std::to_string(kMinSecretBytes) +
                     " are required (e.g. the output of: head -c 32 /dev/urandom | base64)");
}

std::string mode_text(fs::perms p) {
  std::ostringstream out;
  out << '0' << std::oct << (static_cast<unsigned>(p) & 0777);
  return out.str();
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

enum class Created { yes, already_there };

// Writes a fresh random key to `file` without ever exposing it: the temp file is created 0600 by
// mkstemp, filled and fsync'ed, then published with link(), which (unlike rename) fails if `file`
// exists, so two first runs racing each other end up sharing the winner's key.
std::optional<Exit> create_secret_file(const fs::path& dir, const fs::path& file, std::string& secret,
                                       Created& created) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return fail(1, "cannot create data dir " + dir.string() + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);  // 0700
  }

  // 256 random bits as 43 characters of base64url: the key is these characters, as it will be
  // when read back.
  secret = adapters::sodium::random_secret_base64url(32);

  std::string temp = (dir / ".jwt-secret.XXXXXX").string();
  int fd = ::mkstemp(temp.data());
  if (fd < 0) return fail(1, "cannot create a file in " + dir.string() + ": " + std::strerror(errno));
  bool written = write_all(fd, secret + "\n") && ::fsync(fd) == 0;
  int write_errno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temp.c_str());
    return fail(1, "cannot write " + temp + ": " + std::strerror(write_errno));
  }

  created = Created::yes;
  if (::link(temp.c_str(), file.c_str()) != 0) {
    int link_errno = errno;
    if (link_errno == EEXIST) {
      created = Created::already_there;
    } else if (::rename(temp.c_str(), file.c_str()) != 0) {  // no hard links here (e.g. some mounts)
      int rename_errno = errno;
      ::unlink(temp.c_str());
      return fail(1, "cannot create " + file.string() + ": " + std::strerror(rename_errno));
    }
  }
  ::unlink(temp.c_str());  // after link(): drops the temp name; after rename(): already gone

  if (int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dir_fd >= 0) {  // persist the new name
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return std::nullopt;
}

bool inline_source(const std::string& source) { return source == "env" || source == ".env"; }

}  // namespace

std::optional<Exit> resolve_jwt_secret(Settings& settings, std::vector<std::string>& notes) {
  auto& jwt = settings.jwt;
  if (inline_source(jwt.secret_source))
    return check_length(jwt.secret, "REGISTRAR_JWT_SECRET (from " + jwt.secret_source + ")");

  if (!jwt.secret_file.empty()) {
    std::string what = "--jwt-secret-file " + jwt.secret_file.string() + " (REGISTRAR_JWT_SECRET_FILE)";
    if (auto exit = read_secret_file(jwt.secret_file, what, jwt.secret, notes)) return exit;
    jwt.secret_source = "file " + jwt.secret_file.string();
    return check_length(jwt.secret, what);
  }

  fs::path stored = settings.data_dir / "jwt-secret";
  std::error_code ec;
  if (!fs::exists(stored, ec)) {
    Created created = Created::yes;
    if (auto exit = create_secret_file(settings.data_dir, stored, jwt.secret, created)) return exit;
    if (created == Created::yes) {
      jwt.secret_source = "generated " + stored.string();
      return std::nullopt;
    }
    // Another process created it first: use theirs, below.
  }
  std::string what = "the JWT key file " + stored.string();
  if (auto exit = read_secret_file(stored, what, jwt.secret, notes)) return exit;
  jwt.secret_source = "data-dir " + stored.string();
  return check_length(jwt.secret, what);
}

std::optional<Exit> resolve_webhook_secret(Settings& settings, std::vector<std::string>& notes) {
  auto& webhook = settings.webhook;
  if (!webhook.secret.empty() || webhook.secret_file.empty()) return std::nullopt;
  std::string what =
      "--webhook-secret-file " + webhook.secret_file.string() + " (REGISTRAR_WEBHOOK_SECRET_FILE)";
  return read_secret_file(webhook.secret_file, what, webhook.secret, notes);
}

std::optional<Exit> resolve_sms_webhook_secret(Settings& settings, std::vector<std::string>& notes) {
  auto& sms = settings.sms;
  if (!sms.webhook_secret.empty() || sms.webhook_secret_file.empty()) return std::nullopt;
  std::string what =
      "--sms-webhook-secret-file " + sms.webhook_secret_file.string() + " (REGISTRAR_SMS_WEBHOOK_SECRET_FILE)";
  return read_secret_file(sms.webhook_secret_file, what, sms.webhook_secret, notes);
}

std::optional<Exit> resolve_admin_token(Settings& settings, std::vector<std::string>& notes) {
  const bool from_file = settings.admin_token.empty() && !settings.admin_token_file.empty();
  std::string what = from_file ? "--admin-token-file " + settings.admin_token_file.string() + " (REGISTRAR_ADMIN_TOKEN_FILE)"
                               : std::string("REGISTRAR_ADMIN_TOKEN");
  if (from_file)
    if (auto exit = read_secret_file(settings.admin_token_file, what, settings.admin_token, notes)) return exit;
  if (settings.admin_token.empty()) return std::nullopt;
  return check_length(settings.admin_token, what);
}

std::optional<Exit> resolve_secrets(Settings& settings, std::vector<std::string>& notes) {
  switch (settings.command) {
    case Command::serve:
      if (auto exit = resolve_jwt_secret(settings, notes)) return exit;
      if (auto exit = resolve_admin_token(settings, notes)) return exit;
      if (auto exit = resolve_sms_webhook_secret(settings, notes)) return exit;
      return resolve_webhook_secret(settings, notes);
    case Command::consume:
      return resolve_webhook_secret(settings, notes);
    case Command::worker:  // verification tokens (JWT secret), nothing else secret
      return resolve_jwt_secret(settings, notes);
    default:
      return std::nullopt;
  }
}

std::optional<Exit> read_secret_file(const fs::path& path, const std::string& what, std::string& out,
                                     std::vector<std::string>& notes) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec) return fail(2, "cannot read " + what + ": " + ec.message());
  if (!fs::is_regular_file(status)) return fail(2, "cannot read " + what + ": not a regular file");
  if (fs::file_size(path, ec) > kMaxSecretFileBytes) return fail(2, what + " is too large to be a key");

  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(2, "cannot read " + what + ": " + std::strerror(errno));
  std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return fail(2, "cannot read " + what);
  while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back()))) content.pop_back();

  auto perms = status.permissions();
  if ((perms & (fs::perms::group_read | fs::perms::others_read)) != fs::perms::none)
    notes.push_back(what + " is readable by group/others (mode " + mode_text(perms) + "); chmod 600 it");
  out = std::move(content);
  return std::nullopt;
}

}  // namespace registrar::config
