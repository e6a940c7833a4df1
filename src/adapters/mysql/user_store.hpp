#pragma once
#include "adapters/mysql/pool.hpp"
#include "ports/user_store.hpp"

namespace registrar::adapters::mysql {

// ports::UserStore on MySQL/MariaDB. The database must be migrated (apply_migrations) before use.
// Every call blocks on the network: the composition root runs them on a thread pool.
class MysqlUserStore final : public ports::UserStore {
 public:
  explicit MysqlUserStore(MysqlPool& pool) : pool_(pool) {}

  ports::CreateUserOutcome create_user(const domain::User& user, std::optional<std::string_view> email_canonical,
                                       std::string_view username_canonical,
                                       const domain::EventEnvelope& event) override;
  ports::CreateUserOutcome create_user_with_key(const domain::User& user, std::optional<std::string_view> email_canonical,
                                                std::string_view username_canonical, const domain::EventEnvelope& event,
                                                const ports::IdempotencyKeyRecord& key, domain::Timestamp now) override;
  std::optional<ports::IdempotencyKeyRecord> find_idempotency_key(std::string_view key_hash,
                                                                  domain::Timestamp now) override;
  bool mark_email_verified(std::string_view user_id, domain::Timestamp verified_at,
                           const domain::EventEnvelope& event) override;
  std::optional<domain::User> find_by_id(std::string_view id) override;
  std::optional<domain::User> find_by_email(std::string_view email_canonical) override;
  std::optional<domain::User> find_by_username(std::string_view username_canonical) override;
  std::optional<domain::User> find_by_phone_index(std::string_view phone_index) override;
  std::optional<domain::User> find_by_verification_id(std::string_view verification_id) override;
  bool contact_or_username_taken(std::optional<std::string_view> email_canonical, std::string_view username_canonical,
                                 std::optional<std::string_view> phone_index) override;
  std::vector<ports::SealedPhoneRow> phones_not_sealed_under(std::string_view key_id, std::string_view after_user_id,
                                                             std::size_t limit) override;
  std::size_t reseal_phones(const std::vector<ports::Reseal>& batch) override;
  std::vector<std::pair<std::string, std::size_t>> phone_key_counts() override;
  void ping() override;

 private:
  ports::CreateUserOutcome create(const domain::User& user, std::optional<std::string_view> email_canonical,
                                  std::string_view username_canonical, const domain::EventEnvelope& event,
                                  const ports::IdempotencyKeyRecord* key, domain::Timestamp now);
  std::optional<domain::User> find_one(std::string_view sql, std::string_view key);
  bool verification_id_exists(std::string_view verification_id);
  MysqlPool& pool_;
};

}  // namespace registrar::adapters::mysql
