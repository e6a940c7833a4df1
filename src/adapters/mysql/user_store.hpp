#pragma once
#include "adapters/mysql/pool.hpp"
#include "ports/user_store.hpp"

namespace registrar::adapters::mysql {

// ports::UserStore on MySQL/MariaDB. The database must be migrated (apply_migrations) before use.
// Every call blocks on the network: the composition root runs them on a thread pool.
class MysqlUserStore final : public ports::UserStore {
 public:
  explicit MysqlUserStore(MysqlPool& pool) : pool_(pool) {}

  ports::CreateUserOutcome create_user(const domain::User& user, std::string_view email_canonical,
                                       std::string_view username_canonical,
                                       const domain::EventEnvelope& event) override;
  std::optional<domain::User> find_by_id(std::string_view id) override;
  std::optional<domain::User> find_by_email(std::string_view email_canonical) override;
  std::optional<domain::User> find_by_username(std::string_view username_canonical) override;
  bool email_or_username_taken(std::string_view email_canonical, std::string_view username_canonical) override;
  void ping() override;

 private:
  std::optional<domain::User> find_one(std::string_view sql, std::string_view key);
  MysqlPool& pool_;
};

}  // namespace registrar::adapters::mysql
