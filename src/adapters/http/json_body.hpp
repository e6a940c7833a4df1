#pragma once
// Reading JSON request bodies: media type check (415), strict parse incl. UTF-8 validation (400),
// and typed field extraction with per-field errors.
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>
#include "adapters/http/problem.hpp"

namespace registrar::adapters::http {

// Either the parsed JSON object or the problem to answer with.
std::variant<boost::json::object, ProblemSpec> parse_json_object(const Request& req);

// Collects string fields; a missing field or one of the wrong type becomes a FieldError.
class FieldReader {
 public:
  explicit FieldReader(const boost::json::object& obj) : obj_(obj) {}
  std::string required_string(std::string_view name);
  std::optional<std::string> optional_string(std::string_view name);
  const std::vector<domain::FieldError>& errors() const { return errors_; }

 private:
  const boost::json::object& obj_;
  std::vector<domain::FieldError> errors_;
};

}  // namespace registrar::adapters::http
